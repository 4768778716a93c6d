//! Writing to stdout and stderr without ever panicking, and without letting
//! untrusted text drive the terminal.
//!
//! `println!` panics when the stream is closed or the disk is full; an
//! installer must not die of that, so every diagnostic goes through here and
//! write errors are ignored. Recipe output, catalog text and command output
//! are not ours: an escape sequence in them could retitle the terminal or
//! erase lines, so every line printed here has its control characters
//! shown as `\xNN` (event streams keep the text, JSON-escaped).

use std::borrow::Cow;
use std::io::{IsTerminal, Write};

/// Characters that change how a terminal shows text rather than being text:
/// C0 and C1 controls, DEL, and the Unicode bidirectional and invisible
/// formatting marks (U+202E can make `gpj.exe` read `exe.jpg`).
fn is_control(c: char, keep_newline: bool) -> bool {
    match c {
        '\t' => false,
        '\n' => !keep_newline,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        '\u{feff}' => true,
        _ => false,
    }
}

fn clean_with(s: &str, keep_newline: bool) -> Cow<'_, str> {
    if !s.chars().any(|c| is_control(c, keep_newline)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !is_control(c, keep_newline) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// Does `s` hold a character that is not text to a terminal (a control, an
/// escape, a bidirectional override)? For names that must be plain.
pub fn has_control(s: &str) -> bool {
    s.chars().any(|c| is_control(c, false))
}

/// `s` with every control character made visible: safe for one terminal line.
pub fn clean(s: &str) -> Cow<'_, str> {
    clean_with(s, false)
}

/// One line on stderr, control characters made visible, write errors ignored.
pub fn line(s: &str) {
    let s = clean(s);
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(s.as_bytes());
    let _ = e.write_all(b"\n");
    let _ = e.flush();
}

/// Raw text on stderr: onramp's own escape sequences (the live display).
/// Anything untrusted inside must already be `clean`.
pub fn raw(s: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(s.as_bytes());
    let _ = e.flush();
}

/// One line on stdout (machine-readable answers), write errors ignored. On a
/// terminal, control characters are made visible (newlines are kept); a
/// pipe gets the bytes as they are.
pub fn stdout_line(s: &str) {
    let tty = std::io::stdout().is_terminal();
    let s = if tty {
        clean_with(s, true)
    } else {
        Cow::Borrowed(s)
    };
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes());
    let _ = o.write_all(b"\n");
    let _ = o.flush();
}

pub fn stderr_is_tty() -> bool {
    std::io::stderr().is_terminal()
}

/// At most `max` bytes of `s` (cut at a character boundary), with a note of
/// how much was left out: for text that untrusted output fills.
pub fn bounded(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}… ({} more bytes)", &s[..end], s.len() - end))
}

#[macro_export]
macro_rules! say {
    ($($t:tt)*) => { $crate::out::line(&format!($($t)*)) };
}

/// Columns of the terminal on stderr (0 when it is not one).
pub fn term_width() -> usize {
    crate::sys::term_width()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_become_visible() {
        assert_eq!(clean("plain ✓ text\tok"), "plain ✓ text\tok");
        assert_eq!(
            clean("a\x1b]0;pwned\x07b\x1b[2Kc"),
            "a\\x1b]0;pwned\\x07b\\x1b[2Kc"
        );
        assert_eq!(clean("two\nlines\r"), "two\\x0alines\\x0d");
        assert_eq!(clean("evil\u{202e}gpj.exe"), "evil\\u{202e}gpj.exe");
        assert_eq!(clean("c1 \u{9b}31m"), "c1 \\x9b31m");
        assert_eq!(clean_with("a\nb\x1b", true), "a\nb\\x1b");
    }

    #[test]
    fn bounded_cuts_at_a_char_boundary() {
        assert_eq!(bounded("short", 10), "short");
        let s = "é".repeat(10);
        let b = bounded(&s, 5);
        assert!(b.starts_with("éé…"), "{b}");
        assert!(b.ends_with("(16 more bytes)"), "{b}");
    }
}
