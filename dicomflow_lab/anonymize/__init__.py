"""PS3.15 de-identification: the confidentiality profile as data, options and templates."""

from __future__ import annotations

from .profile import (
    Action,
    MatchKind,
    Option,
    ProfileCounts,
    ProfileRow,
    profile_counts,
    profile_rows,
    resolve_action,
    row_for,
)
from .templates import (
    DatePolicy,
    Override,
    OverrideAction,
    PixelRule,
    Rectangle,
    SafePrivate,
    Template,
    TemplateError,
    UidPolicy,
    list_templates,
    load_template,
    template_from_dict,
    template_from_options,
)

__all__ = [
    "Action",
    "DatePolicy",
    "MatchKind",
    "Option",
    "Override",
    "OverrideAction",
    "PixelRule",
    "ProfileCounts",
    "ProfileRow",
    "Rectangle",
    "SafePrivate",
    "Template",
    "TemplateError",
    "UidPolicy",
    "list_templates",
    "load_template",
    "profile_counts",
    "profile_rows",
    "resolve_action",
    "row_for",
    "template_from_dict",
    "template_from_options",
]
