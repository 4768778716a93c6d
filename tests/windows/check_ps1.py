#!/usr/bin/env python3
"""Checks install.ps1 on its syntax tree (tree-sitter-powershell), since no
PowerShell runtime can be installed on the machines the tests run on.

  check_ps1.py rules FILE          parse FILE and apply the rules below
  check_ps1.py parity REPO HELPER  flags, environment variables, exit codes
                                   and phases of install.sh, install.ps1 and
                                   the helper agree

Rules (each names what it found and where, and exits 1):
  syntax      no ERROR or MISSING node, and ASCII only: Windows PowerShell
              5.1 reads a file without a BOM in the ANSI code page, and irm
              decodes by the server's charset
  ps51        no PowerShell 7-only syntax: ?? ??= ?. ?[ ternary && ||
  exit        every `exit` is inside `if ($asFile)` in Invoke-OnrampEntry
              (under iex, exit would close the user's window)
  tls         TLS 1.2 is ORed into SecurityProtocol, unconditionally, before
              anything that makes a web request can run
  hash        the helper runs only after Get-FileHash matched its pin (but
              for ONRAMP_HELPER and a helper built from this checkout)
  iex         no Invoke-Expression/iex, no Add-Type, no script block made
              from text
  prompt      every Read-Host is inside `if (Test-OnrampInteractive)`
  policy      the execution policy is never changed (Set-ExecutionPolicy)
  paths       cmdlets that take a path get -LiteralPath: a user name with
              [ ] or other wildcard characters is a name, not a pattern

  check_ps1.py truncation FILE     every prefix of FILE cut at a line end, and
                                   at every byte of its last line, runs
                                   nothing: it does not parse, or it does not
                                   call the entry with its end marker
  check_ps1.py platform REPO       cfg(windows) only in helper/src/platform.rs,
                                   each public item there paired with a
                                   cfg(unix) one of the same name, and README's
                                   list of Unix-only modules is the true one
"""

import re
import sys

import tree_sitter_powershell as tsp
from tree_sitter import Language, Parser

PARSER = Parser(Language(tsp.language()))

# What makes a web request in PowerShell and .NET.
REQUEST_COMMANDS = {"invoke-webrequest", "invoke-restmethod", "iwr", "irm", "start-bitstransfer", "curl", "wget"}
REQUEST_TYPES = re.compile(r"\[(System\.)?Net\.(HttpWebRequest|WebRequest|WebClient|Http\.HttpClient)\]", re.I)
BRANCHES = {"if_statement", "else_clause", "elseif_clause", "switch_statement", "while_statement",
            "for_statement", "foreach_statement", "do_statement", "catch_clause", "trap_statement"}


def text(n):
    return n.text.decode("utf-8", "replace")


def where(n):
    return f"line {n.start_point[0] + 1}"


def walk(n):
    yield n
    for c in n.children:
        yield from walk(c)


def ancestors(n):
    p = n.parent
    while p is not None:
        yield p
        p = p.parent


def function_of(n):
    for a in ancestors(n):
        if a.type == "function_statement":
            return a
    return None


def func_name(f):
    for c in f.children:
        if c.type == "function_name":
            return text(c)
    return None


def command_name(cmd):
    for c in cmd.children:
        if c.type == "command_name":
            return text(c).lower()
    return None


def is_call_op(cmd):
    return any(c.type == "command_invokation_operator" for c in cmd.children)


def if_condition(ifn):
    """The pipeline between the parentheses of an if_statement."""
    seen = False
    for c in ifn.children:
        if c.type == "(":
            seen = True
        elif seen and c.type == "pipeline":
            return c
    return None


def in_if_body(n, ifn):
    """Is n inside ifn's first statement block (not its condition or else)?"""
    for c in ifn.children:
        if c.type == "statement_block":
            return c.start_byte <= n.start_byte and n.end_byte <= c.end_byte
    return False


# Cmdlets whose -Path is a wildcard pattern; -LiteralPath is not.
PATH_CMDLETS = {"test-path", "remove-item", "copy-item", "move-item", "get-filehash", "get-itemproperty",
                "get-item", "get-childitem", "get-content", "set-content", "add-content", "rename-item",
                "resolve-path", "split-path"}


class Script:
    def __init__(self, path):
        self.path = path
        self.src = open(path, "rb").read()
        self.tree = PARSER.parse(self.src)
        self.root = self.tree.root_node
        self.funcs = {}
        for n in walk(self.root):
            if n.type == "function_statement":
                self.funcs[func_name(n).lower()] = n
        self.errors = []

    def fail(self, rule, n, msg):
        self.errors.append(f"{self.path}: {rule}: {where(n)}: {msg}")

    def commands(self, node=None):
        for n in walk(node or self.root):
            if n.type == "command":
                yield n

    def calls(self, node):
        """Names of the functions defined here that node calls directly."""
        out = []
        for c in self.commands(node):
            name = command_name(c)
            if name in self.funcs:
                out.append((name, c))
        return out

    def reaches(self, node, pred, seen=None):
        """Does node, or a function it calls (transitively), hold a node
        for which pred is true?"""
        seen = set() if seen is None else seen
        if any(pred(n) for n in walk(node)):
            return True
        for name, _ in self.calls(node):
            if name not in seen:
                seen.add(name)
                if self.reaches(self.funcs[name], pred, seen):
                    return True
        return False

    # --- rules -------------------------------------------------------------

    def rule_syntax(self):
        for i, line in enumerate(self.src.split(b"\n")):
            if any(b > 0x7F for b in line):
                self.errors.append(f"{self.path}: syntax: line {i + 1}: a non-ASCII character; 5.1 would read it in the ANSI code page")
        if not self.root.has_error:
            return
        for n in walk(self.root):
            if n.type == "ERROR" or n.is_missing:
                self.fail("syntax", n, f"does not parse: {text(n)[:60]!r}")

    def rule_ps51(self):
        for n in walk(self.root):
            if n.type == "pipeline_chain_tail":
                self.fail("ps51", n, f"{text(n)[:2]!r} pipeline chains need PowerShell 7; use if ($LASTEXITCODE ...)")
            if n.child_count == 0 and text(n).strip() in {"??", "??=", "?.", "?[", "?"}:
                self.fail("ps51", n, f"{text(n).strip()!r} needs PowerShell 7; Windows PowerShell 5.1 must run this")
            if n.type == "ternary_expression":
                self.fail("ps51", n, "the ternary operator needs PowerShell 7")

    def rule_exit(self):
        for n in walk(self.root):
            if n.type == "flow_control_statement" and text(n).lower().startswith("exit"):
                f = function_of(n)
                guarded = False
                for a in ancestors(n):
                    if a.type == "if_statement":
                        cond = if_condition(a)
                        if cond is not None and text(cond).strip().lower() == "$asfile" and in_if_body(n, a):
                            guarded = True
                        break
                if f is None or func_name(f) != "Invoke-OnrampEntry" or not guarded:
                    self.fail("exit", n, "`exit` outside `if ($asFile)` in Invoke-OnrampEntry: under iex it closes the user's window; throw (Stop-Onramp) instead")
        if re.search(rb"\[(System\.)?Environment\]::Exit", self.src, re.I):
            self.fail("exit", self.root, "[Environment]::Exit ends the user's PowerShell")

    def is_request(self, n):
        if n.type == "command" and not is_call_op(n) and command_name(n) in REQUEST_COMMANDS:
            return True
        return n.type == "type_literal" and REQUEST_TYPES.fullmatch(text(n)) is not None

    def rule_tls(self):
        setter = None
        for n in walk(self.root):
            if n.type == "assignment_expression":
                lhs = text(n.children[0]).replace(" ", "").lower()
                if lhs.endswith("servicepointmanager]::securityprotocol"):
                    setter = n
        if setter is None:
            self.fail("tls", self.root, "no assignment to [Net.ServicePointManager]::SecurityProtocol")
            return
        tls_fn = function_of(setter)
        tls12 = [n for n in walk(tls_fn or self.root) if n.type == "assignment_expression"
                 and re.search(r"SecurityProtocolType\]::Tls12", text(n))]
        if not tls12 or not all("-bor" in text(n) for n in tls12):
            self.fail("tls", setter, "SecurityProtocol must be ORed (-bor) with [Net.SecurityProtocolType]::Tls12, keeping what is allowed")
        tls_name = func_name(tls_fn).lower() if tls_fn is not None else None
        # Walk from the top level (the entry) in source order, into every
        # function called: the TLS call must come first, and every call on
        # the way to it must be unconditional.

        def first_event(node, sites):
            for n in walk(node):
                if self.is_request(n):
                    return ("request", n, sites)
                if n.type == "command":
                    name = command_name(n)
                    if name == tls_name:
                        return ("tls", n, sites + [n])
                    called = {command_name(s) for s in sites}
                    if name in self.funcs and name not in called:
                        ev = first_event(self.funcs[name], sites + [n])
                        if ev:
                            return ev
            return None

        ev = None
        for st in (c for c in self.root.children if c.type == "statement_list"):
            for child in st.children:
                if child.type != "function_statement" and ev is None:
                    ev = first_event(child, [])
        if ev is None:
            self.fail("tls", self.root, "the TLS setup is never called from the entry point")
        elif ev[0] == "request":
            self.fail("tls", ev[1], "a web request can run before TLS 1.2 is enabled")
        else:
            for site in ev[2]:
                for a in ancestors(site):
                    if a.type == "function_statement":
                        break
                    if a.type in BRANCHES:
                        self.fail("tls", site, f"{text(site)[:40]!r} is on the way to the TLS setup but runs only conditionally")
                        break

    def rule_hash(self):
        f = self.funcs
        for need in ("get-onrampsha256", "use-onrampverified", "get-onramphelper", "assert-onramphelperruns",
                     "test-onramphelperruns", "install-onramphelperfile"):
            if need not in f:
                self.fail("hash", self.root, f"function {need} is missing")
                return
        sha = f["get-onrampsha256"]
        if not re.search(r"Get-FileHash\b.*-Algorithm\s+SHA256", text(sha), re.I | re.S):
            self.fail("hash", sha, "Get-OnrampSha256 must use Get-FileHash -Algorithm SHA256")
        # The only programs started with & : the helper (two places and its
        # probe), tar.exe and cargo.
        allowed = {("test-onramphelperruns", "$path"), ("invoke-onramphelper", "$s.helper"),
                   ("get-onramphelperoutput", "$s.helper"), ("get-onramphelper", "$tar"),
                   ("get-onramphelper", "cargo")}
        for c in self.commands():
            if is_call_op(c):
                fn = function_of(c)
                target = text(c.children[1]).lower()
                if (func_name(fn).lower() if fn else None, target) not in allowed:
                    self.fail("hash", c, f"a program is started with & {target}: only the verified helper may be (add it to the rule only after review)")
        # Start-Process starts only the helper already chosen (and checked).
        for c in self.commands():
            if command_name(c) == "start-process":
                m = re.search(r"-FilePath\s+(\S+)", text(c), re.I)
                if not m or m.group(1).lower() != "$s.helper":
                    self.fail("hash", c, "Start-Process of anything but $S.Helper (the verified helper)")
        # The probe runs the helper only from Assert-OnrampHelperRuns.
        for c in self.commands():
            name = command_name(c)
            fn = function_of(c)
            fname = func_name(fn).lower() if fn else None
            if name == "test-onramphelperruns" and fname != "assert-onramphelperruns":
                self.fail("hash", c, "Test-OnrampHelperRuns runs the helper; call it only through Assert-OnrampHelperRuns")
            if name == "assert-onramphelperruns" and fname == "use-onrampverified":
                ok = False
                for a in ancestors(c):
                    if a.type == "if_statement":
                        cond = if_condition(a)
                        ok = cond is not None and in_if_body(c, a) and "get-onrampsha256" in text(cond).lower() and "-eq" in text(cond).lower()
                        break
                if not ok:
                    self.fail("hash", c, "Use-OnrampVerified must run the helper only inside if ((Get-OnrampSha256 ...) -eq $Sha)")
            elif name == "assert-onramphelperruns" and fname != "get-onramphelper":
                self.fail("hash", c, "the helper is probed outside Get-OnrampHelper/Use-OnrampVerified")
        # In Get-OnrampHelper, what the pinned branch returns is what
        # Use-OnrampVerified said.
        gh = f["get-onramphelper"]
        pin_if = None
        for n in walk(gh):
            if n.type == "if_statement":
                cond = if_condition(n)
                if cond is not None and text(cond).replace(" ", "").lower() == "$pin-ne''":
                    pin_if = n
                    break
        if pin_if is None:
            self.fail("hash", gh, "Get-OnrampHelper lacks its `if ($pin -ne '')` branch")
            return
        verified_vars = set()
        for n in walk(pin_if):
            if n.type == "assignment_expression" and "use-onrampverified" in text(n).lower():
                verified_vars.add(text(n.children[0]).strip().lower())
        for n in walk(pin_if):
            if n.type == "flow_control_statement" and text(n).lower().startswith("return"):
                val = text(n)[len("return"):].strip().strip("()").strip().lower()
                if not (val.startswith("use-onrampverified") or val in verified_vars):
                    self.fail("hash", n, f"the pinned branch returns {val!r}, not what Use-OnrampVerified checked")
        # Install-OnrampHelperFile hashes the copy before moving it in.
        ih = text(f["install-onramphelperfile"]).lower()
        if not (0 <= ih.find("get-onrampsha256") < ih.find("move-item")):
            self.fail("hash", f["install-onramphelperfile"], "the staged helper must be hashed before it is moved into place")
        for n in walk(self.root):
            if n.type == "assignment_expression" and text(n.children[0]).strip().lower() == "$s.helper":
                if not re.fullmatch(r"get-onramphelper\s+\$s", text(n.children[-1]).strip().lower()):
                    self.fail("hash", n, "$S.Helper may only be set from Get-OnrampHelper")

    def rule_iex(self):
        for c in self.commands():
            name = command_name(c)
            if name in ("invoke-expression", "iex", "add-type"):
                self.fail("iex", c, f"{name} runs text as code")
            if is_call_op(c) and text(c.children[1]).lower().startswith("$executioncontext"):
                self.fail("iex", c, "running a script block made from text")
        if re.search(rb"\[scriptblock\]::Create|NewScriptBlock|InvokeScript", self.src_code(), re.I):
            self.fail("iex", self.root, "a script block is made from text")

    def src_code(self):
        """The source without comments and strings."""
        out = bytearray(self.src)
        for n in walk(self.root):
            if n.type in ("comment", "string_literal", "expandable_string_literal", "verbatim_string_characters",
                          "expandable_here_string_literal", "verbatim_here_string_characters"):
                for i in range(n.start_byte, n.end_byte):
                    out[i] = 0x20
        return bytes(out)

    def rule_prompt(self):
        for c in self.commands():
            if command_name(c) == "read-host":
                ok = False
                for a in ancestors(c):
                    if a.type == "if_statement":
                        cond = if_condition(a)
                        ok = cond is not None and in_if_body(c, a) and text(cond).strip().lower() == "test-onrampinteractive"
                        break
                if not ok:
                    self.fail("prompt", c, "Read-Host outside `if (Test-OnrampInteractive)`: with no one to ask it hangs or fails; refuse without -Yes instead")

    def rule_policy(self):
        for c in self.commands():
            if command_name(c) == "set-executionpolicy":
                self.fail("policy", c, "Set-ExecutionPolicy changes the machine's or user's policy; the installer needs no change")


    def rule_paths(self):
        for c in self.commands():
            name = command_name(c)
            if name not in PATH_CMDLETS:
                continue
            params = [text(n).lower() for n in walk(c) if n.type == "command_parameter"]
            if name == "split-path" and ("-parent" in params or "-leaf" in params) and "-path" not in params:
                continue  # Split-Path -Parent X only cuts text
            if "-literalpath" not in params:
                self.fail("paths", c, f"{command_name(c)} without -LiteralPath reads its path as a wildcard pattern")

    def rule_installer(self):
        # The helper words what it decides for the installer it is told;
        # install.ps1 must say it is install.ps1 (-Fresh, not --fresh).
        for n in walk(self.root):
            if n.type == "array_literal_expression" or n.type == "array_expression":
                t = text(n)
                if re.search(r"'(after-failure|check-options)'|'--decide'", t) and "'--installer', 'ps1'" not in t:
                    self.fail("installer", n, "a helper decision without '--installer', 'ps1': its messages would name install.sh's flags")


def rules(path):
    s = Script(path)
    s.rule_syntax()
    if not s.errors:
        for r in (s.rule_ps51, s.rule_exit, s.rule_tls, s.rule_hash, s.rule_iex, s.rule_prompt,
                  s.rule_policy, s.rule_paths, s.rule_installer):
            r()
    for e in s.errors:
        print(e)
    if s.errors:
        return 1
    print(f"{path}: parses; rules syntax, ps51, exit, tls, hash, iex, prompt, policy, paths, installer hold ({len(s.funcs)} functions)")
    return 0


# --- parity -----------------------------------------------------------------

def pascal(flag):
    return "".join(w.capitalize() for w in flag.lstrip("-").split("-"))


# What install.sh says that has no Windows counterpart, and why.
UNIX_ONLY = (
    "on Windows, use install.ps1",  # install.sh refusing Windows
    "unsupported operating system",  # install.ps1: 'install.ps1 is for Windows'
    "running under Rosetta 2",  # macOS; install.ps1 says its ARM64 emulation
    "neither HOME nor XDG_CACHE_HOME",  # install.ps1: LOCALAPPDATA
    "cannot verify the helper: looked for sha256sum",  # Get-FileHash is always there
    "cannot download the helper: neither curl nor wget",  # .NET downloads
    "no Rust target known for",  # cargo builds the host target on Windows
    "the helper was killed by signal",  # install.ps1: 'the helper stopped abnormally'
)


def ps_params(s):
    """Parameter names of the top-level param block, aliases included."""
    names = set()
    block = next(c for c in s.root.children if c.type == "param_block")
    for p in walk(block):
        if p.type == "script_parameter":
            t = text(p)
            m = re.search(r"\[Alias\('([^']+)'\)\]", t)
            v = re.search(r"\$(\w+)\s*$", t.strip())
            names.add(m.group(1) if m else v.group(1))
    return names


def parity(repo, helper):
    import subprocess
    errs = []
    sh = open(f"{repo}/install.sh").read()
    libs = "".join(open(f"{repo}/lib/{m}.sh").read() for m in ("ui", "exitcodes", "platform", "helper", "resume", "phases"))
    ps = Script(f"{repo}/install.ps1")
    # Flags: install.sh's --long-name is install.ps1's -LongName.
    body = sh[sh.index("onramp_parse_args() {"):sh.index("onramp_env_flag() {")]
    sh_flags = {pascal(f) for f in re.findall(r"(--[a-z][a-z-]*)[ )|]", body) if f != "--onramp-eof"}
    ps_flags = ps_params(ps)
    for f in sorted(sh_flags - ps_flags):
        kebab = re.sub(r"(?<!^)([A-Z])", r"-\1", f).lower()
        errs.append(f"flag --{kebab} of install.sh has no -{f} in install.ps1")
    for f in sorted(ps_flags - sh_flags):
        errs.append(f"-{f} of install.ps1 has no flag in install.sh")
    # Environment variables.
    sh_env = set(re.findall(r"ONRAMP_[A-Z0-9_]+", sh + libs))
    ps_env = set(re.findall(r"ONRAMP_[A-Z0-9_]+", ps.src.decode()))
    for v in sorted(sh_env - ps_env):
        errs.append(f"{v}: install.sh reads or documents it, install.ps1 does not")
    for v in sorted(ps_env - sh_env):
        errs.append(f"{v}: install.ps1 reads or documents it, install.sh does not")
    # Exit codes: the helper's table, lib/exitcodes.sh's, install.ps1's.
    helper_codes = subprocess.run([helper, "exit-codes"], capture_output=True, text=True, check=True).stdout.split("\n")
    helper_codes = [tuple(l.split()) for l in helper_codes if l.strip()]
    sh_codes = [tuple(l.split()) for l in subprocess.run(
        ["sh", "-c", f". '{repo}/lib/exitcodes.sh'; onramp_exit_code_table"],
        capture_output=True, text=True, check=True).stdout.split("\n") if l.strip()]
    fn = ps.funcs["get-onrampexitcodes"]
    ps_codes = [tuple(m) for m in re.findall(r"^\s*(\w+) = (\d+)\s*$", text(fn), re.M)]
    if not (helper_codes == sh_codes == ps_codes):
        errs.append(f"exit codes differ:\n  helper      {helper_codes}\n  install.sh  {sh_codes}\n  install.ps1 {ps_codes}")
    # Phases: the helper's state::PHASES, lib/phases.sh, install.ps1.
    rs = open(f"{repo}/helper/src/state.rs").read()
    m = re.search(r"pub const PHASES: \[&str; \d+\] = \[(.*?)\];", rs, re.S)
    helper_phases = re.findall(r'"(\w+)"', m.group(1))
    sh_phases = re.search(r"onramp_phases\(\) \{\n\s*printf '%s\\n' ([a-z ]+)\n", libs).group(1).split()
    ps_phases = re.findall(r"'(\w+)'", text(ps.funcs["get-onrampphases"]))
    if not (helper_phases == sh_phases == ps_phases):
        errs.append(f"phases differ:\n  helper      {helper_phases}\n  install.sh  {sh_phases}\n  install.ps1 {ps_phases}")
    # Messages: each thing install.sh says is said by install.ps1 as well
    # (flag names and paths aside), but for what only Unix has.
    said = re.findall(r"onramp_(?:say|die \"\$EX_\w+\") \"([^\"$]{24,})", sh + libs)
    ps_text = ps.src.decode()
    for msg in said:
        core = re.split(r"--| sh install\.sh", msg)[0].strip().replace("install.sh", "install.ps1")
        if len(core) < 20 or any(core.startswith(u) for u in UNIX_ONLY):
            continue
        if core not in ps_text:
            errs.append(f"install.sh says {core!r}; install.ps1 does not")
    for e in errs:
        print(e)
    if errs:
        return 1
    print(f"parity: {len(sh_flags)} flags, {len(sh_env)} environment variables, {len(ps_codes)} exit codes, "
          f"{len(ps_phases)} phases and {len(said)} messages agree")
    return 0


def truncation(path):
    src = open(path, "rb").read()
    last = src.rstrip(b"\n").rfind(b"\n") + 1
    cuts = [i + 1 for i, b in enumerate(src[:last]) if b == 0x0A] + list(range(last, len(src.rstrip(b"\n"))))
    bad = []
    for cut in cuts:
        tree = PARSER.parse(src[:cut])
        if tree.root_node.has_error:
            continue
        for st in (c for c in tree.root_node.children if c.type == "statement_list"):
            for child in st.children:
                if child.type == "function_statement":
                    continue
                t = text(child)
                if "Invoke-OnrampEntry" in t and "-Eof 'onramp-eof'" in t:
                    bad.append(cut)
    if bad:
        print(f"{path}: cut at byte(s) {bad[:5]} of {len(src)}, it still runs the install")
        return 1
    print(f"{path}: {len(cuts)} truncations, none runs anything")
    return 0


# What only code under helper/src/sys/ may name: the OS's own APIs and
# the cfg switches between them.
OS_NAMES = re.compile(
    r"\blibc::|std::os::(?:unix|windows|fd)|cfg!?\((?:[^()]*\b)?(?:unix|windows|target_os)\b")
TEST_MOD = re.compile(r"#\[cfg\((?:test|all\(test,\s*unix\))\)\]\s*mod\s+\w+\s*\{")
PUB_ITEM = re.compile(
    r"^\s*pub(?:\(crate\))? (?:unsafe )?(fn|struct|enum|const|static|type|mod) (\w+)", re.M)


def pub_items(*paths):
    """(kind, name) of the public items (methods included) in `paths`,
    outside test modules."""
    out = set()
    for p in paths:
        t = open(p).read()
        m = TEST_MOD.search(t)
        out |= set(PUB_ITEM.findall(t[: m.start()] if m else t))
    return out


def platform(repo):
    """Every OS difference lives in helper/src/sys/: no other module (but
    its test modules) names libc, std::os::{unix,windows,fd} or an OS cfg;
    and each family's files offer the same public items."""
    import glob
    import os
    errs = []
    src = f"{repo}/helper/src"
    files = sorted(glob.glob(f"{src}/**/*.rs", recursive=True))
    for f in files:
        rel = os.path.relpath(f, src)
        if rel.startswith("sys" + os.sep):
            continue
        t = open(f).read()
        m = TEST_MOD.search(t)
        body = t[: m.start()] if m else t
        for n, line in enumerate(body.splitlines(), 1):
            if OS_NAMES.search(line.split("//")[0]):
                errs.append(f"helper/src/{rel}:{n}: names the OS directly "
                            f"({line.strip()[:60]}); put the difference in sys/")
    s = f"{src}/sys"
    pairs = [
        ("unix", [f"{s}/unix/mod.rs", f"{s}/unix/linux.rs"],
         "windows", [f"{s}/windows/mod.rs"]),
        ("linux", [f"{s}/unix/linux.rs"], "macos", [f"{s}/unix/macos.rs"]),
        ("unix dirfd", [f"{s}/unix/dirfd.rs"], "windows dirfd", [f"{s}/windows/dirfd.rs"]),
    ]
    total = 0
    for an, af, bn, bf in pairs:
        a, b = pub_items(*af), pub_items(*bf)
        # ffi declarations are the Windows half's own means, not a pair.
        b.discard(("mod", "ffi"))
        for kind, name in sorted(b - a):
            errs.append(f"sys: {kind} {name} has a {bn} version and no {an} one")
        for kind, name in sorted(a - b):
            errs.append(f"sys: {kind} {name} has a {an} version and no {bn} one")
        total += len(a & b)
    for e in errs:
        print(e)
    if errs:
        return 1
    print(f"platform: {total} items paired across unix/windows, linux/macos and the two dirfd; "
          "no module outside sys/ names the OS")
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "rules":
        return rules(argv[2])
    if len(argv) == 4 and argv[1] == "parity":
        return parity(argv[2], argv[3])
    if len(argv) == 3 and argv[1] == "truncation":
        return truncation(argv[2])
    if len(argv) == 3 and argv[1] == "platform":
        return platform(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
