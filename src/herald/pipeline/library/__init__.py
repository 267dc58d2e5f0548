"""The template library: defaults Herald ships per (event type, channel, locale), tenants' overrides, and the
resolver producers (campaigns) call. See :mod:`herald.pipeline.library.resolve` for the rules."""

from herald.pipeline.library.defaults import BY_NAME, DEFAULT_LOCALE, EVENT_TYPES, EventType, Text
from herald.pipeline.library.resolve import (
    TEMPLATE_CACHE_SECONDS,
    RenderedTemplate,
    ResolvedTemplate,
    TemplateCache,
    locale_chain,
    normalise_locale,
    render_resolved,
    render_template,
    resolve_template,
    template_variables,
)

__all__ = [
    "BY_NAME",
    "DEFAULT_LOCALE",
    "EVENT_TYPES",
    "TEMPLATE_CACHE_SECONDS",
    "EventType",
    "RenderedTemplate",
    "ResolvedTemplate",
    "TemplateCache",
    "Text",
    "locale_chain",
    "normalise_locale",
    "render_resolved",
    "render_template",
    "resolve_template",
    "template_variables",
]
