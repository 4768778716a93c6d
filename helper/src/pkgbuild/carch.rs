//! Conditions that only compare `$CARCH` with constants, evaluated for the
//! target architecture: `[[ $CARCH == x86_64 ]]`, `[ "$CARCH" = armv7h ]`,
//! `test "${CARCH}" != i686`, `!`, and `&&` / `||` between and inside them.
//! `[[ ]]` treats an unquoted right side as a glob (`arm*`), as bash does.
//! Anything else is not a CARCH condition (None): the caller refuses it.

#[derive(Debug, Clone)]
struct Tok {
    text: String,
    quoted: bool,
}

/// Split on blanks; a token may be quoted with ' or " as a whole.
fn tokens(s: &str) -> Option<Vec<Tok>> {
    let mut out = Vec::new();
    for w in s.split_whitespace() {
        let (text, quoted) = if w.len() >= 2
            && ((w.starts_with('"') && w.ends_with('"'))
                || (w.starts_with('\'') && w.ends_with('\'')))
        {
            (&w[1..w.len() - 1], true)
        } else {
            (w, false)
        };
        if text.contains(['"', '\'', '`', '\\', '(', ')', ';', '<', '>']) {
            return None;
        }
        out.push(Tok {
            text: text.to_string(),
            quoted,
        });
    }
    Some(out)
}

fn is_carch(t: &Tok) -> bool {
    t.text == "$CARCH" || t.text == "${CARCH}"
}

/// A constant word (no expansion at all).
fn constant(t: &Tok) -> Option<&str> {
    (!t.text.contains('$')).then_some(t.text.as_str())
}

/// Bash glob match of `s` against `pat` (only `*` and `?`).
fn glob(pat: &[char], s: &[char]) -> bool {
    match (pat.first(), s.first()) {
        (None, None) => true,
        (Some('*'), _) => glob(&pat[1..], s) || (!s.is_empty() && glob(pat, &s[1..])),
        (Some('?'), Some(_)) => glob(&pat[1..], &s[1..]),
        (Some(p), Some(c)) if p == c => glob(&pat[1..], &s[1..]),
        _ => false,
    }
}

fn compare(l: &Tok, op: &str, r: &Tok, carch: &str, double: bool) -> Option<bool> {
    let (other, on_right) = match (is_carch(l), is_carch(r)) {
        (true, false) => (r, true),
        (false, true) => (l, false),
        _ => return None,
    };
    let c = constant(other)?;
    // Only the right side of `==` in [[ ]] is a pattern.
    let eq = if double && !other.quoted && on_right {
        if c.contains('[') {
            return None;
        }
        let p: Vec<char> = c.chars().collect();
        let s: Vec<char> = carch.chars().collect();
        glob(&p, &s)
    } else {
        c == carch
    };
    match op {
        "==" | "=" => Some(eq),
        "!=" => Some(!eq),
        _ => None,
    }
}

/// `ITEM ((&& | ||) ITEM)*`, each ITEM optionally negated with `!`, left to
/// right as bash evaluates lists; `item` reads one ITEM at `*i`. Without
/// `joins`, a single ITEM only.
fn list(t: &[Tok], joins: bool, mut item: impl FnMut(&mut usize) -> Option<bool>) -> Option<bool> {
    let mut i = 0;
    let mut acc: Option<bool> = None;
    let mut join = "";
    while i < t.len() {
        let neg = t[i].text == "!" && !t[i].quoted;
        if neg {
            i += 1;
        }
        let v = item(&mut i)? != neg;
        acc = Some(match (acc, join) {
            (None, _) => v,
            (Some(a), "&&") => a && v,
            (Some(a), "||") => a || v,
            _ => return None,
        });
        if i < t.len() {
            if !joins {
                return None;
            }
            join = match t[i].text.as_str() {
                "&&" => "&&",
                "||" => "||",
                _ => return None,
            };
            i += 1;
            if i == t.len() {
                return None;
            }
        }
    }
    acc
}

/// `a OP b (&&|| a OP b)*` inside one `[[ ]]`, or one `a OP b` for `[`/test.
fn inner(t: &[Tok], carch: &str, double: bool) -> Option<bool> {
    list(t, double, |i| {
        let c = t.get(*i..*i + 3)?;
        *i += 3;
        compare(&c[0], &c[1].text, &c[2], carch, double)
    })
}

/// Evaluate a whole condition list (`[[ .. ]] || [ .. ] && test ..`).
pub fn eval(cond: &str, carch: &str) -> Option<bool> {
    let t = tokens(cond)?;
    list(&t, true, |i| {
        let (close, double) = match t.get(*i).map(|x| x.text.as_str()) {
            Some("[[") => ("]]", true),
            Some("[") => ("]", false),
            Some("test") => ("", false),
            _ => return None,
        };
        let start = *i + 1;
        let end = if close.is_empty() {
            t[start..]
                .iter()
                .position(|x| x.text == "&&" || x.text == "||")
                .map_or(t.len(), |p| start + p)
        } else {
            start
                + t[start..]
                    .iter()
                    .position(|x| x.text == close && !x.quoted)?
        };
        *i = if close.is_empty() { end } else { end + 1 };
        inner(&t[start..end], carch, double)
    })
}

#[cfg(test)]
mod tests {
    use super::eval;

    #[test]
    fn carch_conditions() {
        assert_eq!(eval("[[ $CARCH == x86_64 ]]", "x86_64"), Some(true));
        assert_eq!(eval("[ \"$CARCH\" = 'aarch64' ]", "x86_64"), Some(false));
        assert_eq!(eval("test \"${CARCH}\" != i686", "x86_64"), Some(true));
        assert_eq!(eval("[[ $CARCH == arm* ]]", "armv7h"), Some(true));
        assert_eq!(eval("[[ $CARCH == 'arm*' ]]", "armv7h"), Some(false));
        assert_eq!(
            eval("[[ $CARCH == a || $CARCH == x86_64 ]]", "x86_64"),
            Some(true)
        );
        assert_eq!(
            eval("[[ $CARCH == a ]] || [[ $CARCH == b ]]", "b"),
            Some(true)
        );
        assert_eq!(eval("! [[ $CARCH == a ]]", "a"), Some(false));
        assert_eq!(eval("[[ $OTHER == a ]]", "a"), None);
        assert_eq!(eval("[[ -f x ]]", "a"), None);
        assert_eq!(eval("[[ $CARCH == $X ]]", "a"), None);
        assert_eq!(eval("[[ $CARCH == [ab] ]]", "a"), None);
        assert_eq!(eval("[[ $CARCH == a", "a"), None);
    }
}
