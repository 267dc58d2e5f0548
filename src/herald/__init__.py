"""Herald: governed proactive messaging for AI agents."""
