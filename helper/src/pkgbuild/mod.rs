//! PKGBUILD recipes read without running them.
//!
//! `parse` understands the static part of bash that recipes use for their
//! metadata: assignments (`=`, `+=`, arrays over several lines, comments),
//! quoting and escapes, parameter expansion (`${v}`, `${v//a/b}`, `${v%x}`,
//! `${v:-d}`, ...), brace expansion in arrays, and `package_*()` overrides
//! found the way makepkg finds them. Anything that needs execution (command
//! substitution, conditionals and loops around assignments, globs, unknown
//! variables) is refused with the construct and its line: a wrong answer is
//! worse than a refusal. `srcinfo` writes what `makepkg --printsrcinfo` does.

mod carch;
mod eval;
#[cfg(test)]
mod fuzz;
mod lex;
mod lint;
mod meta;
mod srcinfo;

pub use eval::eval;
pub use meta::{Meta, SourceEntry};
pub use srcinfo::srcinfo;

use std::collections::BTreeMap;

/// A variable's value: bash strings and indexed arrays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    Str(String),
    Arr(Vec<String>),
}

impl Val {
    /// `$v` of an array is its first element, as in bash.
    pub fn scalar(&self) -> String {
        match self {
            Val::Str(s) => s.clone(),
            Val::Arr(a) => a.first().cloned().unwrap_or_default(),
        }
    }

    pub fn list(&self) -> Vec<String> {
        match self {
            Val::Str(s) => vec![s.clone()],
            Val::Arr(a) => a.clone(),
        }
    }
}

/// A refusal: what could not be read statically, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub line: usize,
    pub what: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.what)
    }
}

/// The parsed recipe: global variables in assignment order, and the bodies
/// of its functions.
#[derive(Debug, Clone, Default)]
pub struct Recipe {
    pub vars: BTreeMap<String, Val>,
    pub functions: BTreeMap<String, (usize, String)>,
    /// Function bodies are `declare -f` output (from `--eval`), where
    /// makepkg only matches indented lines (so not here-document text).
    pub declare_f: bool,
}

/// Read `text` for `carch` as a build would: statically, or, when the static
/// reader refuses, sourced in the locked-down bash (`eval`, 60 s, with the
/// files of `dir`, the recipe's folder), after telling `on_eval` why. A pinned recipe is no less trusted sourced than
/// built; makepkg would source it too.
pub fn read(
    text: &str,
    carch: &str,
    dir: Option<&std::path::Path>,
    on_eval: impl FnOnce(&Refusal),
) -> crate::error::Result<Recipe> {
    match parse(text, carch) {
        Ok(r) => Ok(r),
        Err(refusal) => {
            on_eval(&refusal);
            Ok(eval(text, carch, dir, std::time::Duration::from_secs(60))?.0)
        }
    }
}

/// Parse `text` for target architecture `carch` (CARCH).
pub fn parse(text: &str, carch: &str) -> Result<Recipe, Refusal> {
    let mut env = BTreeMap::new();
    env.insert("CARCH".to_string(), Val::Str(carch.to_string()));
    let mut r = Recipe::default();
    let mut lx = lex::Lexer::new(text);
    // Open `if`s that test only CARCH: (this branch runs, a branch ran).
    let mut ifs: Vec<(bool, bool)> = Vec::new();
    // Whether the last command run was a false `[[ ]] && x=...`: when it
    // is the recipe's last, sourcing returns non-zero and makepkg refuses it.
    let mut last_false = false;
    loop {
        lx.skip_blank_and_comments();
        if lx.eof() {
            break;
        }
        let line = lx.line();
        let active = ifs.iter().all(|f| f.0);
        let refuse = |lx: &lex::Lexer, why: &str| Refusal {
            line,
            what: format!("{} ({why})", lx.describe_here()),
        };
        const ONLY_CARCH: &str =
            "only conditionals that compare $CARCH with constants are read statically";
        if lx.at_keyword("if") {
            if !active {
                // Not run: only its structure matters.
                lx.skip_statement();
                ifs.push((false, true));
                continue;
            }
            let here = refuse(&lx, ONLY_CARCH);
            let Some(cond) = lx.condition_then("if") else {
                return Err(here);
            };
            let Some(v) = carch::eval(&cond, carch) else {
                return Err(here);
            };
            ifs.push((v, v));
            continue;
        }
        if lx.at_keyword("elif") || lx.at_keyword("else") || lx.at_keyword("fi") {
            let here = refuse(&lx, ONLY_CARCH);
            let Some(top) = ifs.last().copied() else {
                return Err(here);
            };
            let outer = ifs.len() < 2 || ifs[..ifs.len() - 1].iter().all(|f| f.0);
            if lx.at_keyword("fi") {
                lx.advance_keyword("fi");
                // An if that ran no branch has status 0.
                if !top.1 {
                    last_false = false;
                }
                ifs.pop();
            } else if lx.at_keyword("else") {
                lx.advance_keyword("else");
                if let Some(f) = ifs.last_mut() {
                    *f = (!top.1, true);
                }
            } else {
                if !outer || top.1 {
                    lx.skip_statement();
                    // The `then` after a skipped elif condition.
                    if let Some(f) = ifs.last_mut() {
                        f.0 = false;
                    }
                    lx.skip_blank_and_comments();
                    if lx.at_keyword("then") {
                        lx.advance_keyword("then");
                    }
                    continue;
                }
                let Some(cond) = lx.condition_then("elif") else {
                    return Err(here);
                };
                let Some(v) = carch::eval(&cond, carch) else {
                    return Err(here);
                };
                if let Some(f) = ifs.last_mut() {
                    *f = (v, v);
                }
            }
            continue;
        }
        if !active {
            // `then if ...`: the nested `if` must still be seen.
            if lx.at_keyword("then") || lx.at_keyword("do") {
                lx.advance_keyword(if lx.at_keyword("then") { "then" } else { "do" });
                continue;
            }
            if lx.function()?.is_some() {
                continue;
            }
            lx.skip_statement();
            continue;
        }
        if lx.at_keyword("[[") || lx.at_keyword("[") || lx.at_keyword("test") {
            let here = refuse(&lx, ONLY_CARCH);
            let Some(cond) = lx.condition_and() else {
                return Err(here);
            };
            let Some(v) = carch::eval(&cond, carch) else {
                return Err(here);
            };
            if !v {
                lx.skip_statement();
                last_false = true;
                continue;
            }
        }
        last_false = false;
        // `export NAME=value NAME ...`: its assignments; exporting changes
        // nothing a .SRCINFO depends on, and `export NAME` alone nothing.
        if lx.at_keyword("export") {
            let here = refuse(
                &lx,
                "only `export NAME=value` and `export NAME` are read statically",
            );
            lx.advance_keyword("export");
            while !lx.at_statement_end() {
                match lx.assignment(&env)? {
                    Some((name, _, _)) if name == "IFS" => return Err(here),
                    Some((name, append, val)) => assign(&mut env, &name, append, val),
                    None if lx.bare_name() => {}
                    None => return Err(here),
                }
            }
            continue;
        }
        // `: ${NAME:=default}`: a knob's default, assigned when it is unset
        // (or, with the colon, empty); its text is expanded only then.
        if lx.at_keyword(":") {
            let here = refuse(&lx, "after `:` only ${NAME:=default} is read statically");
            lx.advance_keyword(":");
            while !lx.at_statement_end() {
                let Some((name, colon, text)) = lx.default_assignment() else {
                    return Err(here);
                };
                let unset = match env.get(&name) {
                    None => true,
                    Some(Val::Str(v)) => colon && v.is_empty(),
                    Some(Val::Arr(_)) => return Err(here),
                };
                if unset && name != "IFS" {
                    let mut sub = lex::Lexer::new(&format!("{name}=\"{text}\""));
                    match sub.assignment(&env) {
                        Ok(Some((n, _, v))) => assign(&mut env, &n, false, v),
                        _ => return Err(here),
                    }
                } else if unset {
                    return Err(here);
                }
            }
            continue;
        }
        let here = refuse(&lx, "a function defined inside a conditional");
        if let Some((name, body_line, body)) = lx.function()? {
            if !ifs.is_empty() {
                return Err(here);
            }
            r.functions.insert(name, (body_line, body));
            continue;
        }
        match lx.assignment(&env)? {
            Some((name, _, _)) if name == "IFS" => {
                return Err(Refusal {
                    line,
                    what: "an assignment to IFS (it changes how every later word splits; read it with --eval)".into(),
                });
            }
            Some((name, append, val)) => {
                assign(&mut env, &name, append, val);
                lx.end_of_statement()?;
            }
            None => {
                return Err(Refusal {
                    line,
                    what: format!(
                        "{} (only assignments and functions are read statically)",
                        lx.describe_here()
                    ),
                });
            }
        }
    }
    if !ifs.is_empty() {
        return Err(Refusal {
            line: lx.line(),
            what: "an if without its fi".into(),
        });
    }
    if last_false {
        return Err(Refusal {
            line: 0,
            what: "makepkg rejects this recipe: its last command is a false `[[ ]] && ...`, so sourcing it fails".into(),
        });
    }
    env.remove("CARCH");
    r.vars = env;
    Ok(r)
}

fn assign(env: &mut BTreeMap<String, Val>, name: &str, append: bool, val: Val) {
    let new = match (append, env.get(name), val) {
        (true, Some(Val::Arr(old)), Val::Arr(add)) => {
            Val::Arr(old.iter().cloned().chain(add).collect())
        }
        (true, Some(Val::Arr(old)), Val::Str(s)) => {
            let mut a = old.clone();
            match a.first_mut() {
                Some(f) => f.push_str(&s),
                None => a.push(s),
            }
            Val::Arr(a)
        }
        (true, Some(Val::Str(old)), Val::Arr(add)) => {
            Val::Arr(std::iter::once(old.clone()).chain(add).collect())
        }
        (true, Some(Val::Str(old)), Val::Str(s)) => Val::Str(format!("{old}{s}")),
        (_, _, v) => v,
    };
    env.insert(name.to_string(), new);
}

/// Checksum arrays, in makepkg's order.
pub const HASHES: [&str; 8] = [
    "cksums",
    "md5sums",
    "sha1sums",
    "sha224sums",
    "sha256sums",
    "sha384sums",
    "sha512sums",
    "b2sums",
];

/// Arrays that may be architecture-specific (`depends_x86_64`), in the order
/// makepkg's .SRCINFO writer lists them; the checksum arrays follow.
pub const ARCH_ARRAYS: [&str; 8] = [
    "source",
    "provides",
    "conflicts",
    "depends",
    "replaces",
    "optdepends",
    "makedepends",
    "checkdepends",
];

/// Attributes a `package_*()` function may override (makepkg's schema).
pub const OVERRIDES: &[&str] = &[
    "pkgdesc",
    "arch",
    "url",
    "license",
    "groups",
    "depends",
    "optdepends",
    "provides",
    "conflicts",
    "replaces",
    "backup",
    "options",
    "install",
    "changelog",
];

/// The overrides assigned in `package_NAME()`, found as makepkg finds them:
/// any line of the body that starts with `attr=` or `attr+=`, whatever
/// conditional it sits in, evaluated against the globals.
pub fn overrides(
    r: &Recipe,
    pkg: &str,
    arches: &[String],
) -> Result<BTreeMap<String, Val>, Refusal> {
    // makepkg greps the function for every attribute its .SRCINFO writer
    // asks about, overrides or not: the strings as `name=value`, the arrays
    // as `name=(`.
    let kind = |n: &str| {
        if ["pkgdesc", "url", "install", "changelog"].contains(&n) {
            Form::Scalar
        } else {
            Form::Array
        }
    };
    let mut names: Vec<(String, Form)> =
        OVERRIDES.iter().map(|s| (s.to_string(), kind(s))).collect();
    names.push(("checkdepends".into(), Form::Array));
    for a in arches {
        for base in ARCH_ARRAYS.iter().chain(HASHES.iter()) {
            names.push((format!("{base}_{a}"), Form::Array));
        }
    }
    function_assignments(r, pkg, &names)
}

/// How makepkg's pattern for an attribute in a function looks for it:
/// `name=(` (arrays), `name=` followed by something else (strings), or
/// either (its lint's "can not be set inside a package function").
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Array,
    Scalar,
    Either,
}

/// What makepkg's `extract_function_variable` finds in `package_PKG()`
/// (or `package()`) for `names`: every line of the function as
/// `declare -f` prints it that starts with `name=` or `name+=`, evaluated
/// in order into a copy of the global value. `declare -f` starts a line at
/// every `;`-separated statement, after `then`, `do`, `else`, `{` and a
/// case pattern `pat)`, which is where this scan looks.
pub fn function_assignments(
    r: &Recipe,
    pkg: &str,
    names: &[(String, Form)],
) -> Result<BTreeMap<String, Val>, Refusal> {
    let Some((start, body)) = r
        .functions
        .get(&format!("package_{pkg}"))
        .or_else(|| r.functions.get("package"))
    else {
        return Ok(BTreeMap::new());
    };
    let mut names = names.to_vec();
    // Longest first, so depends_x86_64 is not taken for depends.
    names.sort_by_key(|n| std::cmp::Reverse(n.0.len()));
    let mut out: BTreeMap<String, Val> = BTreeMap::new();
    // makepkg evaluates these lines in a function with `local pkgname=$1`:
    // `${pkgname}` in an override is the split package's own name.
    let mut vars = r.vars.clone();
    vars.insert("pkgname".into(), Val::Str(pkg.to_string()));
    let mut lx = lex::Lexer::new(body);
    lx.set_line(*start);
    // Where an assignment was taken, to find those the scan did not see.
    let mut taken: Vec<usize> = Vec::new();
    while !lx.eof() {
        let col0 = lx.at_line_start();
        if r.declare_f {
            // `declare -f` output, as makepkg greps it: one line at a
            // time, `^[[:space:]]* name+?=`; a line at column 0 is
            // here-document text, and nothing else on a line starts one.
            if !col0 {
                lx.skip_line();
                continue;
            }
            let indent = lx.skip_spaces_counted();
            if indent == 0 {
                lx.skip_line();
                continue;
            }
        } else {
            lx.skip_spaces();
            if lx.eat(';') || lx.eat('&') {
                continue;
            }
            // The recipe's own text: `declare -f` starts a line at every
            // `;`-separated statement and after `then`, `do`, `else`, `{`
            // and a case pattern.
            for kw in ["then", "do", "else", "{"] {
                lx.eat_keyword(kw);
            }
            if lx.eat_case_header() {
                continue;
            }
            lx.eat_case_pattern();
        }
        let here = lx.rest_of_line();
        let mut hit = None;
        for (n, form) in &names {
            let Some(rest) = here.strip_prefix(n.as_str()) else {
                continue;
            };
            let Some(value) = rest.strip_prefix('=').or_else(|| rest.strip_prefix("+=")) else {
                continue;
            };
            // Looked at where makepkg looks, whatever the verdict.
            taken.push(lx.offset());
            let array = value.starts_with('(');
            // makepkg's string pattern is `name=` and one more character
            // that is not `(`. In `declare -f` output (--eval) that is
            // exact; in the recipe's own text an empty `name=` reads
            // `name=;` once printed where another statement follows, but
            // not at the end of a block: too close to call, so refused.
            let ambiguous =
                !r.declare_f && (value.is_empty() || value.starts_with([';', ' ', '\t']));
            if ambiguous && *form != Form::Array {
                return Err(Refusal {
                    line: lx.line(),
                    what: format!(
                        "an empty {n}= in package_{pkg}() (whether makepkg sees it depends on what follows it)"
                    ),
                });
            }
            let seen = match form {
                Form::Array => array,
                Form::Scalar => !value.is_empty() && !array,
                Form::Either => !value.is_empty(),
            };
            if seen {
                hit = Some(n.clone());
            }
            break;
        }
        match hit {
            Some(n) => {
                let line = lx.line();
                let Some((_, append, val)) = lx.assignment(&vars)? else {
                    return Err(Refusal {
                        line,
                        what: format!("cannot read the assignment of {n} in package_{pkg}()"),
                    });
                };
                // makepkg evaluates the whole line: with more on it (a
                // subshell's `)`, `&& cmd`) its result is not the value.
                lx.end_of_statement()?;
                // makepkg evaluates into a copy that starts from the global value.
                let base = out.get(&n).cloned().or_else(|| r.vars.get(&n).cloned());
                let mut tmp = BTreeMap::new();
                if let Some(b) = base {
                    tmp.insert(n.clone(), b);
                }
                assign(&mut tmp, &n, append, val);
                if let Some(v) = tmp.remove(&n) {
                    out.insert(n, v);
                }
                if r.declare_f {
                    lx.skip_line();
                }
            }
            None if r.declare_f => lx.skip_line(),
            None => lx.skip_to_line_start(),
        }
    }
    if !r.declare_f
        && let Some((n, line)) = unseen_assignment(body, *start, &names, &taken)
    {
        return Err(Refusal {
            line,
            what: format!(
                "an assignment of {n} in package_{pkg}() inside a construct that `declare -f` lays out differently (makepkg may see it); read it with --eval"
            ),
        });
    }
    Ok(out)
}

/// Is position `i` inside a statement where `declare -f` keeps it on the
/// line of what precedes it: after another word (`local name=`, `declare
/// -a name=`, an argument) or after `&&`, `||` or `|` (not a `{` group)?
/// makepkg's pattern, anchored at the start of a line, never sees it.
fn mid_line(c: &[char], i: usize) -> bool {
    let mut j = i;
    while j > 0 && matches!(c[j - 1], ' ' | '\t') {
        j -= 1;
    }
    if j == 0 {
        return false;
    }
    let prev = c[j - 1];
    if prev == '&' || prev == '|' {
        return true;
    }
    if !(prev.is_alphanumeric() || "-_./\"'$}]".contains(prev)) {
        return false;
    }
    // The word before: a keyword after which a line starts is no argument.
    let mut k = j;
    while k > 0 && !c[k - 1].is_whitespace() && !";&|(){}".contains(c[k - 1]) {
        k -= 1;
    }
    let word: String = c[k..j].iter().collect();
    !matches!(word.as_str(), "then" | "do" | "else" | "in" | "{")
}

/// In a function's own text, an assignment to one of `names` (`name=` or
/// `name+=`, not part of a longer word, outside comments) at a place the
/// scan did not take: the static reader cannot tell whether makepkg sees
/// it, so it refuses. Returns the name and its line.
fn unseen_assignment(
    body: &str,
    first_line: usize,
    names: &[(String, Form)],
    taken: &[usize],
) -> Option<(String, usize)> {
    let c: Vec<char> = body.chars().collect();
    let ident = |ch: char| ch.is_ascii_alphanumeric() || ch == '_';
    let (mut line, mut in_comment, mut quote) = (first_line, false, None::<char>);
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            in_comment = false;
            i += 1;
            continue;
        }
        if in_comment {
            i += 1;
            continue;
        }
        match (quote, ch) {
            (None, '#') if i == 0 || c[i - 1].is_whitespace() => in_comment = true,
            (None, '\'' | '"') => quote = Some(ch),
            (Some(q), _) if ch == q => quote = None,
            (None, '\\') => i += 1,
            _ => {}
        }
        let starts_word = i == 0 || !ident(c[i - 1]);
        if starts_word && quote.is_none() && !taken.contains(&i) && !mid_line(&c, i) {
            for (n, _) in names {
                let nl = n.chars().count();
                let at = |k: usize| c.get(i + k).copied();
                let name_here = c
                    .get(i..i + nl)
                    .is_some_and(|w| w.iter().copied().eq(n.chars()));
                if name_here
                    && (at(nl) == Some('=') || (at(nl) == Some('+') && at(nl + 1) == Some('=')))
                {
                    return Some((n.clone(), line));
                }
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(src: &str) -> BTreeMap<String, Val> {
        parse(src, "x86_64")
            .map(|r| r.vars)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn expansions() {
        let v = vars(
            "pkgver=1.2.3\na=${pkgver//./_}\nb=${pkgver%.*}\nc=${pkgver##*.}\nd=${nope:-x}\ne=${pkgver:2:3}\n",
        );
        assert_eq!(v["a"], Val::Str("1_2_3".into()));
        assert_eq!(v["b"], Val::Str("1.2".into()));
        assert_eq!(v["c"], Val::Str("3".into()));
        assert_eq!(v["d"], Val::Str("x".into()));
        assert_eq!(v["e"], Val::Str("2.3".into()));
    }

    #[test]
    fn arrays_braces_and_splitting() {
        let v = vars("x=\"a  b\"\narr=(p{1,2}q $x \"$x\" 'l{a,b}' n{1..3})\n");
        let want: Vec<String> = ["p1q", "p2q", "a", "b", "a  b", "l{a,b}", "n1", "n2", "n3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(v["arr"], Val::Arr(want));
    }

    #[test]
    fn refusals_name_the_line() {
        let e = parse("a=1\nb=$(date)\n", "x86_64").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.what.contains("command substitution"));
        let e = parse("a=1\n\nif true; then b=2; fi\n", "x86_64").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.what.contains("conditional"));
        assert!(
            parse("d=($HOME)\n", "x86_64")
                .unwrap_err()
                .what
                .contains("$HOME is not set")
        );
    }

    #[test]
    fn never_panics_on_junk() {
        for s in [
            "${",
            "a=(",
            "a=\"",
            "f() {",
            "a=${b",
            "a=${#}",
            "a=({,})",
            "a=(x{1..})",
            "'",
            "a=${x/",
            "a=$'",
            "x=(a\\",
            "a=${v:1:x}",
            "arch=(;x)",
            "a=(x|y)",
            "a=(<x)",
        ] {
            let _ = parse(s, "x86_64");
        }
    }
}
