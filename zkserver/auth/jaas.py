"""JAAS login configuration files, as Java's default `ConfigFile` reads them.

A file holds named sections; each lists login modules with a control flag and options:

    Server {
        org.apache.zookeeper.server.auth.DigestLoginModule required
        user_bob="bobsecret";
    };

ZooKeeper's server reads its `Server` section (another name through `zookeeper.sasl.serverconfig`)
and takes every `user_<name>` option as a DIGEST-MD5 user. The file is named by the JVM flag
`-Djava.security.auth.login.config=<path>`, which operators put in `SERVER_JVMFLAGS` or
`JVMFLAGS` for zkServer.sh to pass on; `jvm_properties` reads those variables.
Comments are `//` to the end of a line and `/* ... */`, as Java's tokenizer reads them.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

import attrs

JAAS_PROPERTY = "java.security.auth.login.config"
FLAGS = frozenset({"required", "requisite", "sufficient", "optional"})
_TOKEN = re.compile(r"""\s*(?:(//[^\n]*)|(/\*.*?\*/)|("(?:[^"\\]|\\.)*")|([{};=])|([^\s{};="]+))""",
                    re.S)


class JaasError(Exception):
    """The file can't be read as a JAAS configuration; the message says where."""


@attrs.frozen
class LoginModule:
    name: str
    flag: str
    options: dict[str, str]


def _tokens(text: str, source: str) -> list[tuple[str, bool, int]]:
    """(token, was it quoted, line) for every token, comments dropped."""
    out: list[tuple[str, bool, int]] = []
    pos = 0
    stripped = text.rstrip()
    while pos < len(stripped):
        m = _TOKEN.match(stripped, pos)
        if m is None or m.end() == pos:
            line = stripped.count("\n", 0, pos) + 1
            raise JaasError(f"{source}:{line}: unexpected text")
        line = stripped.count("\n", 0, m.start(m.lastindex or 0)) + 1
        pos = m.end()
        if m.group(1) or m.group(2):
            continue
        if m.group(3):
            quoted = m.group(3)[1:-1]
            out.append((re.sub(r"\\(.)", r"\1", quoted, flags=re.S), True, line))
        else:
            out.append((m.group(4) or m.group(5), False, line))
    return out


def parse_jaas(text: str, source: str = "<jaas>") -> dict[str, list[LoginModule]]:
    """Every section of a JAAS file: name -> its login modules, in order."""
    toks = _tokens(text, source)
    sections: dict[str, list[LoginModule]] = {}
    i = 0

    def expect(what: str) -> None:
        nonlocal i
        if i >= len(toks) or toks[i][1] or toks[i][0] != what:
            line = toks[min(i, len(toks) - 1)][2] if toks else 1
            raise JaasError(f"{source}:{line}: expected {what!r}")
        i += 1

    def word(what: str) -> tuple[str, int]:
        nonlocal i
        if i >= len(toks) or toks[i][0] in "{};=" and not toks[i][1]:
            line = toks[min(i, len(toks) - 1)][2] if toks else 1
            raise JaasError(f"{source}:{line}: expected {what}")
        tok = toks[i]
        i += 1
        return tok[0], tok[2]

    while i < len(toks):
        name, _ = word("a section name")
        expect("{")
        modules: list[LoginModule] = []
        while i < len(toks) and toks[i][0] != "}":
            module, _ = word("a login module class")
            flag, line = word("a control flag")
            if flag.lower() not in FLAGS:
                raise JaasError(f"{source}:{line}: {flag!r} is not a control flag "
                                f"({', '.join(sorted(FLAGS))})")
            options: dict[str, str] = {}
            while i < len(toks) and not (toks[i][0] == ";" and not toks[i][1]):
                key, _ = word("an option name")
                expect("=")
                value, _ = word("an option value")
                options[key] = value
            expect(";")
            modules.append(LoginModule(module, flag.lower(), options))
        expect("}")
        expect(";")
        # Java keeps the modules of a repeated section name together.
        sections.setdefault(name, []).extend(modules)
    return sections


def jvm_properties(env: Mapping[str, str], *names: str) -> dict[str, str]:
    """The `-Dkey=value` system properties these environment variables set, joined in the
    order given as zkServer.sh joins them (`$SERVER_JVMFLAGS $JVMFLAGS`): a later setting of a
    key wins, as on Java's command line. `JAAS_PROPERTY` names the JAAS file."""
    props: dict[str, str] = {}
    for var in names:
        text = env.get(var, "")
        try:
            words = shlex.split(text)
        except ValueError:
            words = text.split()
        for w in words:
            if w.startswith("-D") and len(w) > 2:
                key, _, value = w[2:].partition("=")
                props[key] = value
    return props
