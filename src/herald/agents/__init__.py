"""Agents that act: built-in LLM agents, Herald's tool registry, durable runs and the MCP server.

An agent is ``external`` (Herald calls its ``callback_url``) or ``llm`` (Herald runs its tool-calling loop
against an OpenAI-compatible endpoint). Producers wake an agent through :mod:`herald.agents.dispatch`, which
answers for every kind (and, in development, for agents with neither, through the echo agent). Every action a
tool takes goes through the pipeline under the calling agent's maturity level and is audited with the run and
step it came from.
"""
