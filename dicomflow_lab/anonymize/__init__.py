"""PS3.15 de-identification: the confidentiality profile as data, options and templates.

>>> import dicomflow_lab as dfl
>>> anon = dfl.anonymize.Anonymizer("research", key=dfl.anonymize.new_key())
>>> anon.preview("in.dcm")                     # doctest: +SKIP
>>> ws.anonymize("study/", "anon/", template="research", key=..., verify=True)  # doctest: +SKIP
>>> dfl.anonymize.verify("study/", "anon/", template="research")  # doctest: +SKIP
"""

from __future__ import annotations

from . import table_dataset
from .burned_in import BlackoutResult, apply_rule, assess, describe_rule, match_rule
from .dates import patient_offset_days, shift_da, shift_dt
from .engine import ActionRecord, Anonymizer, InstanceResult
from .keys import fingerprint, new_key, value_hash
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
from .pseudonyms import Pseudonymizer
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
from .uids import UidRemapper, is_well_known_uid
from .verify import assert_clean, verify

__all__ = [
    "Action",
    "ActionRecord",
    "Anonymizer",
    "BlackoutResult",
    "DatePolicy",
    "InstanceResult",
    "MatchKind",
    "Option",
    "Override",
    "OverrideAction",
    "PixelRule",
    "ProfileCounts",
    "ProfileRow",
    "Pseudonymizer",
    "Rectangle",
    "SafePrivate",
    "Template",
    "TemplateError",
    "UidPolicy",
    "UidRemapper",
    "apply_rule",
    "assert_clean",
    "assess",
    "describe_rule",
    "fingerprint",
    "is_well_known_uid",
    "list_templates",
    "load_template",
    "match_rule",
    "new_key",
    "patient_offset_days",
    "profile_counts",
    "profile_rows",
    "resolve_action",
    "row_for",
    "shift_da",
    "shift_dt",
    "table_dataset",
    "template_from_dict",
    "template_from_options",
    "value_hash",
    "verify",
]
