"""Conversations: messages people send to Herald's channels, and the threads they form."""
