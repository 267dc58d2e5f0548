"""The HTTP API: thin routes over the services, RFC 9457 problem details for every error."""
