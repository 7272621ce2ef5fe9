"""SMS templates: loading every template of a folder with the start-up checks (allowed fields only, plain
`{{ field }}` only, GSM-7, at most one segment with every field at its longest), and rendering one with
each value checked against its field's format (ipoa/domain/sms/__init__.py says why)."""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from .encoding import SMS_LIMIT, gsm7_length, is_gsm7, non_gsm7
from .fields import ALLOWED_FIELDS, FIELD_FORMATS, FIELD_MAX_LENGTHS, FIELDS
from .invitations import invites_reply
from .links import DEFAULT_LINK_BASE, LINK_TOKEN_LENGTH, LINK_TOKEN_MIN

__all__ = ["TEMPLATE_NAMES", "SmsTemplateError", "SmsTemplates"]

# The shipped set; the app passes it as `required` so a missing file stops start-up, not a send.
TEMPLATE_NAMES: tuple[str, ...] = (
    "referral_sent",
    "referral_relay",
    "referral_accepted",
    "referral_declined",
    "referral_completed",
    "escalation",
    "escalation_call",
    "escalation_digest",
    "reply_ack",
    "reply_status",
    "reply_unknown",
    # OFF / ON within a shift (service/availability.py): the answers, and what the duty lead is told.
    "reply_off",
    "reply_off_no_shift",
    "reply_on",
    "reply_on_not_off",
    "availability_off",
    "availability_off_alone",
    "availability_on",
)


class SmsTemplateError(ValueError):
    """An SMS template or the values given to it are unsafe or too long; the message says which."""


_WHITESPACE = re.compile(r"[ \t\r\n\f\v]+")


def _collapse(text: str) -> str:
    # Templates may wrap lines for readability; a message is one line.
    return _WHITESPACE.sub(" ", text).strip()


def _describe(node: nodes.Node) -> str:
    kinds = {
        nodes.Filter: "a filter", nodes.Test: "a test", nodes.If: "an if", nodes.CondExpr: "an if",
        nodes.For: "a loop", nodes.Const: "a quoted value", nodes.Call: "a call",
        nodes.Assign: "a set", nodes.AssignBlock: "a set", nodes.Macro: "a macro",
        nodes.Include: "an include", nodes.Extends: "an extends", nodes.Block: "a block",
        nodes.Import: "an import", nodes.FromImport: "an import",
    }
    for kind, text in kinds.items():
        if isinstance(node, kind):
            return text
    return f"an expression ({type(node).__name__})"


class SmsTemplates:
    """The checked SMS templates of one folder. Build with `SmsTemplates.load`."""

    def __init__(self, folder: Path, link_base: str, templates: Mapping[str, Template],
                 variables: Mapping[str, frozenset[str]], link_code_length: int = LINK_TOKEN_LENGTH,
                 reply_inviting: Iterable[str] = ()):
        self.folder = folder
        # The templates whose words invite a reply about their call (domain/sms/invitations.py).
        self.reply_inviting = frozenset(reply_inviting)
        self.link_base = link_base
        self.link_code_length = link_code_length
        self._templates = dict(templates)
        self._variables = dict(variables)
        # Nothing longer than the templates were checked with may be rendered.
        shortest = min(LINK_TOKEN_MIN, link_code_length)
        self._link = re.compile(
            re.escape(link_base) + rf"/r/[A-Za-z0-9_-]{{{shortest},{link_code_length}}}"
        )

    # -- loading ------------------------------------------------------------------------------------

    @classmethod
    def load(cls, folder: Path, link_base: str = DEFAULT_LINK_BASE, *,
             required: Iterable[str] = (), link_code_length: int = LINK_TOKEN_LENGTH) -> SmsTemplates:
        """Load and check every `*.txt` in `folder`; the template's name is the file's stem.

        `link_code_length` is the length of the codes the links will carry: the length check renders
        every link at `link_base` + `/r/` + that many characters, and `render` refuses longer ones. The
        app passes LINK_CODE_LENGTH (ipoa/bootstrap.py); the default, the 22-character token of earlier
        texts, is the longest a link may be, so templates checked with it fit with any code.

        Raises SmsTemplateError listing every problem in every file, so the app refuses to start
        with one message to fix from, rather than failing on the first send.
        """
        folder = Path(folder)
        base = cls._check_link_base(link_base)
        if not 1 <= link_code_length <= LINK_TOKEN_LENGTH:
            raise SmsTemplateError(f"link codes must be 1-{LINK_TOKEN_LENGTH} characters, not {link_code_length}")
        if not folder.is_dir():
            raise SmsTemplateError(f"SMS templates folder {folder} does not exist")
        env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                   keep_trailing_newline=False)
        # Nothing but the given fields may reach a message, not even Jinja's own helpers.
        env.globals.clear()
        worst = {name: field.worst for name, field in FIELDS.items()}
        worst["link"] = f"{base}/r/{'Q' * link_code_length}"

        problems: list[str] = []
        templates: dict[str, Template] = {}
        variables: dict[str, frozenset[str]] = {}
        inviting: set[str] = set()
        paths = sorted(p for p in folder.glob("*.txt") if p.is_file() and not p.name.startswith("."))
        for path in paths:
            found = cls._check_file(env, path, worst)
            if isinstance(found, list):
                problems.extend(f"{path}: {p}" for p in found)
            else:
                templates[path.stem], variables[path.stem], invites = found
                if invites:
                    inviting.add(path.stem)

        missing = sorted(set(required) - {p.stem for p in paths})
        if missing:
            problems.append(f"{folder}: missing SMS template(s): " + ", ".join(f"{m}.txt" for m in missing))
        if not paths and not missing:
            problems.append(f"{folder}: no SMS templates (*.txt) found")
        if problems:
            raise SmsTemplateError("SMS templates refused:\n  " + "\n  ".join(problems))
        return cls(folder, base, templates, variables, link_code_length, inviting)

    @staticmethod
    def _check_link_base(link_base: str) -> str:
        base = link_base.rstrip("/")
        # Plain http only on this machine's own loopback (the embedded demo); anywhere else the secure
        # page must be reached over https.
        if not re.fullmatch(r"(?:https://[A-Za-z0-9.-]+|http://(?:127\.0\.0\.1|localhost))(?::[0-9]+)?"
                            r"(?:/[A-Za-z0-9._-]+)*", base):
            raise SmsTemplateError(
                f"SMS link base {link_base!r} must be an https:// address with no query or fragment "
                "(links go to the secure page and must carry nothing but its token); plain http only "
                "for 127.0.0.1 or localhost"
            )
        return base

    @staticmethod
    def _check_file(env: SandboxedEnvironment, path: Path,
                    worst: Mapping[str, str]) -> tuple[Template, frozenset[str], bool] | list[str]:
        """(template, variables, whether its words invite a reply about its call) or a list of problems."""
        try:
            source = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            return [f"not UTF-8 text ({exc.reason} at byte {exc.start})"]
        try:
            tree = env.parse(source, name=path.name)
        except TemplateSyntaxError as exc:
            return [f"line {exc.lineno}: template syntax error: {exc.message}"]

        problems: list[str] = []
        used = meta.find_undeclared_variables(tree)
        forbidden = sorted(used - ALLOWED_FIELDS)
        if forbidden:
            problems.append(
                "refers to " + ", ".join(forbidden) + " which may not be sent by SMS; allowed fields: "
                + ", ".join(sorted(ALLOWED_FIELDS))
            )
        problems.extend(SmsTemplates._check_nodes(tree))
        if problems:
            return problems

        try:
            template = env.from_string(tree)
            text = _collapse(template.render(**worst))
        except TemplateError as exc:
            return [f"cannot be rendered: {exc}"]
        if not text:
            return ["is empty"]
        if not is_gsm7(text):
            return ["renders characters outside GSM-7: " + ", ".join(non_gsm7(text))]
        length = gsm7_length(text)
        if length > SMS_LIMIT:
            over = length - SMS_LIMIT
            fix = f"shorten its own text by {over} character{'s' if over > 1 else ''}"
            if "link" in used:
                # The link is the one part an operator sets (PUBLIC_BASE_URL): say how long it may be.
                base = worst["link"].rsplit("/r/", 1)[0]
                room = len(base) - over
                fix += (f", or use a link base (PUBLIC_BASE_URL) of at most {room} characters: its links are "
                        f"{base!r} ({len(base)} characters) + '/r/' + a {len(worst['link']) - len(base) - 3}"
                        f"-character code") if room >= len("https://a.b") else (
                        f"; its links alone take {len(worst['link'])} characters on {base!r}")
            return [
                f"renders to {length} GSM-7 characters with the longest allowed values, over the "
                f"{SMS_LIMIT} limit by {over}: {fix}. Longest text: {text!r}"
            ]
        words = " ".join(node.data for node in tree.find_all(nodes.TemplateData))
        return template, frozenset(used), invites_reply(_collapse(words), used)

    @staticmethod
    def _check_nodes(tree: nodes.Template) -> list[str]:
        problems: list[tuple[int, str]] = []
        stack: list[nodes.Node] = list(tree.iter_child_nodes())
        while stack:
            node = stack.pop()
            line = getattr(node, "lineno", 0) or 0
            if isinstance(node, (nodes.Getattr, nodes.Getitem)):
                # The sandbox blocks the worst of it, but any reach into a value is a way to send more
                # than the value itself.
                problems.append((line, "attribute or item access (like ref.x or ref['x']) is not "
                                       "allowed; use plain {{ field }}"))
            elif isinstance(node, nodes.TemplateData):
                odd = non_gsm7(_collapse(node.data))
                if odd:
                    problems.append((line, "text has characters outside GSM-7: " + ", ".join(odd)
                                     + " (use plain quotes, hyphens and letters)"))
            elif isinstance(node, nodes.Name) and node.ctx == "load":
                pass
            elif isinstance(node, nodes.Output):
                stack.extend(node.iter_child_nodes())
            else:
                problems.append((line, f"{_describe(node)} is not allowed; an SMS template is plain "
                                       "text and {{ field }} only"))
        return [f"line {line}: {text}" for line, text in sorted(problems)]

    # -- use ----------------------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return sorted(self._templates)

    @property
    def max_lengths(self) -> dict[str, int]:
        """Longest value accepted for each allowed field, the link included."""
        return {**FIELD_MAX_LENGTHS, "link": len(self.link_base) + 3 + self.link_code_length}

    def fields(self, name: str) -> frozenset[str]:
        """The fields template `name` needs."""
        self._template(name)
        return self._variables[name]

    def link_for(self, token: str) -> str:
        """The secure-page link for a token, in the only form `render` accepts."""
        link = f"{self.link_base}/r/{token}"
        if not self._link.fullmatch(link):
            shortest = min(LINK_TOKEN_MIN, self.link_code_length)
            raise SmsTemplateError(
                f"a link token must be {shortest}-{self.link_code_length} URL-safe characters"
                if shortest < self.link_code_length else
                f"a link code must be {self.link_code_length} URL-safe characters"
            )
        return link

    def render(self, name: str, /, **fields: str) -> str:
        """The message text: one line, GSM-7, at most 160 septets.

        Fields the template does not use may be given (callers can pass one standard set), but every
        value must match its field's format. Errors name the field, never the value, since a refused
        value may be exactly what must not leave the system.
        """
        template = self._template(name)
        unknown = sorted(set(fields) - ALLOWED_FIELDS)
        if unknown:
            raise SmsTemplateError(
                f"SMS template {name!r}: " + ", ".join(unknown) + " may not be sent by SMS; allowed fields: "
                + ", ".join(sorted(ALLOWED_FIELDS))
            )
        missing = sorted(self._variables[name] - set(fields))
        if missing:
            raise SmsTemplateError(f"SMS template {name!r} needs " + ", ".join(missing))
        values = {key: self._value(name, key, value) for key, value in fields.items()}
        text = _collapse(template.render(**values))
        # The value checks should make these unreachable; they are what docs/domain.md promises, so they
        # are checked on the text actually sent rather than inferred.
        if not is_gsm7(text):
            raise SmsTemplateError(f"SMS template {name!r} rendered characters outside GSM-7")
        length = gsm7_length(text)
        if length > SMS_LIMIT:
            raise SmsTemplateError(
                f"SMS template {name!r} rendered {length} GSM-7 characters, over the {SMS_LIMIT} limit"
            )
        return text

    def _template(self, name: str) -> Template:
        try:
            return self._templates[name]
        except KeyError:
            raise SmsTemplateError(
                f"no SMS template {name!r}; known: {', '.join(self.names) or 'none'}"
            ) from None

    def _value(self, name: str, key: str, value: object) -> str:
        def refuse(why: str) -> SmsTemplateError:
            return SmsTemplateError(f"SMS template {name!r}: field {key!r} {why}; expected {FIELD_FORMATS[key]}")

        if not isinstance(value, str):
            raise refuse(f"must be text, not {type(value).__name__}")
        if key == "link":
            if not self._link.fullmatch(value):
                raise refuse("is not a secure-page link (use link_for)")
            return value
        spec = FIELDS[key]
        if key in ("state", "breach"):
            value = value.replace("_", " ")
        if spec.choices is not None:
            if value not in spec.choices:
                raise refuse("is not one of the allowed values")
            value = spec.choices[value]
        elif spec.pattern is None or not spec.pattern.fullmatch(value):
            raise refuse("does not have the expected format")
        if len(value) > spec.max_length:
            raise refuse(f"is {len(value)} characters, over its maximum of {spec.max_length}")
        return value
