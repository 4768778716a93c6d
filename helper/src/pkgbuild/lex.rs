//! The static bash reader behind `pkgbuild::parse`: statements, words,
//! quoting, parameter and brace expansion, field splitting. Every construct
//! it does not model is a `Refusal` naming it and its line.

use super::{Refusal, Val};
use std::collections::BTreeMap;

pub struct Lexer {
    c: Vec<char>,
    pos: usize,
    line: usize,
}

type Env = BTreeMap<String, Val>;
type R<T> = Result<T, Refusal>;

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}
fn is_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// One piece of a word: its text and whether it may be split and globbed.
struct Piece {
    text: String,
    split: bool,
}

impl Lexer {
    pub fn new(text: &str) -> Lexer {
        Lexer {
            c: text.chars().collect(),
            pos: 0,
            line: 1,
        }
    }

    pub fn set_line(&mut self, l: usize) {
        self.line = l;
    }

    /// Where the lexer is, in characters from the start.
    pub fn offset(&self) -> usize {
        self.pos
    }

    pub fn line(&self) -> usize {
        self.line
    }

    pub fn eof(&self) -> bool {
        self.pos >= self.c.len()
    }

    fn peek(&self) -> Option<char> {
        self.c.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.c.get(self.pos + n).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let ch = self.c.get(self.pos).copied()?;
        self.pos += 1;
        if ch == '\n' {
            self.line += 1;
        }
        Some(ch)
    }

    fn refuse<T>(&self, what: impl Into<String>) -> R<T> {
        Err(Refusal {
            line: self.line,
            what: what.into(),
        })
    }

    pub fn rest_of_line(&self) -> String {
        self.c[self.pos..]
            .iter()
            .take_while(|c| **c != '\n')
            .collect()
    }

    pub fn describe_here(&self) -> String {
        let l = self.rest_of_line();
        let first = l.split_whitespace().next().unwrap_or("");
        let what = match first {
            "if" | "elif" | "else" | "fi" | "[[" | "[" | "test" => "a conditional",
            "for" | "while" | "until" | "do" | "done" => "a loop",
            "case" | "esac" => "a case statement",
            _ => "a command",
        };
        format!("{what} ({})", l.trim())
    }

    /// Whether the statement here starts with keyword `kw` (followed by a
    /// blank, `;` or the end of the line).
    pub fn at_keyword(&self, kw: &str) -> bool {
        let n = kw.chars().count();
        self.c[self.pos..].iter().take(n).copied().eq(kw.chars())
            && matches!(
                self.c.get(self.pos + n),
                None | Some(' ' | '\t' | ';' | '\n')
            )
    }

    /// Consume keyword `kw` (known to be here) and the blanks after it.
    pub fn advance_keyword(&mut self, kw: &str) {
        self.advance(kw.chars().count());
        self.skip_spaces();
    }

    /// Consume `n` characters.
    fn advance(&mut self, n: usize) {
        for _ in 0..n {
            self.bump();
        }
    }

    /// At `if COND; then` or `elif COND` + `then` on the next line: the
    /// condition's text, consuming through `then`. None (nothing consumed)
    /// when there is no `then` where expected.
    pub fn condition_then(&mut self, kw: &str) -> Option<String> {
        let line = self.rest_of_line();
        let after_kw = line.strip_prefix(kw)?;
        if let Some(semi) = after_kw.find(';') {
            let tail = after_kw[semi + 1..].trim_start();
            let ok = tail
                .strip_prefix("then")
                .is_some_and(|t| t.is_empty() || t.starts_with([' ', '\t', ';']));
            if !ok {
                return None;
            }
            let cond = after_kw[..semi].to_string();
            let used = line.len() - tail.len() + "then".len();
            self.advance(line[..used].chars().count());
            return Some(cond);
        }
        // `then` alone (or first) on the next line.
        let next: String = self.c[self.pos + line.chars().count()..]
            .iter()
            .skip(1)
            .take_while(|c| **c != '\n')
            .collect();
        let t = next.trim_start();
        if t == "then" || t.starts_with("then ") || t.starts_with("then;") {
            let cond = after_kw.to_string();
            self.advance(line.chars().count() + 1 + (next.len() - t.len()) + 4);
            return Some(cond);
        }
        None
    }

    /// At `[[ COND ]] && NAME=...`: the condition's text, consuming through
    /// the `&&` so that the assignment comes next.
    pub fn condition_and(&mut self) -> Option<String> {
        let line = self.rest_of_line();
        let mut best = None;
        for (i, _) in line.match_indices("&&") {
            let rest = line[i + 2..].trim_start();
            let name_len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if name_len > 0
                && (rest[name_len..].starts_with('=') || rest[name_len..].starts_with("+="))
            {
                best = Some((i, line.len() - rest.len()));
            }
        }
        let (cond_end, start) = best?;
        let cond = line[..cond_end].to_string();
        self.advance(line[..start].chars().count());
        Some(cond)
    }

    /// At the start of a line (or of the text).
    pub fn at_line_start(&self) -> bool {
        self.pos == 0 || self.c.get(self.pos - 1) == Some(&'\n')
    }

    /// `skip_spaces`, saying how many blanks it passed.
    pub fn skip_spaces_counted(&mut self) -> usize {
        let at = self.pos;
        self.skip_spaces();
        self.pos - at
    }

    pub fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t'))
            || (self.peek() == Some('\\') && self.peek_at(1) == Some('\n'))
        {
            if self.peek() == Some('\\') {
                self.bump();
            }
            self.bump();
        }
    }

    /// Consume `c` if it is next.
    pub fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.bump();
            true
        } else {
            false
        }
    }

    /// Consume keyword `kw` (and the blanks after it) if it starts here.
    pub fn eat_keyword(&mut self, kw: &str) {
        let n = kw.chars().count();
        let matches = self.c[self.pos..].iter().take(n).copied().eq(kw.chars())
            && matches!(self.c.get(self.pos + n), Some(' ' | '\t'));
        if matches {
            self.pos += n;
            self.skip_spaces();
        }
    }

    /// Step over a case pattern (`x86_64)`, `arm* | "aarch64")`, `(*)`) at
    /// the start of a statement, if there is one: `declare -f` prints the
    /// commands after it on a line of their own.
    pub fn eat_case_pattern(&mut self) {
        let mut i = self.pos;
        if self.c.get(i) == Some(&'(') {
            i += 1;
        }
        let mut words = 0;
        loop {
            while matches!(self.c.get(i), Some(' ' | '\t')) {
                i += 1;
            }
            let start = i;
            while let Some(&ch) = self.c.get(i) {
                match ch {
                    '\'' | '"' => {
                        let q = ch;
                        i += 1;
                        while self.c.get(i).is_some_and(|c| *c != q) {
                            i += 1;
                        }
                        if self.c.get(i).is_none() {
                            return;
                        }
                        i += 1;
                    }
                    ' ' | '\t' | '\n' | ';' | '&' | '(' | ')' | '|' | '=' | '<' | '>' | '$'
                    | '`' => {
                        break;
                    }
                    _ => i += 1,
                }
            }
            if i == start {
                return;
            }
            words += 1;
            while matches!(self.c.get(i), Some(' ' | '\t')) {
                i += 1;
            }
            match self.c.get(i) {
                Some('|') => i += 1,
                Some(')') if words > 0 => {
                    self.pos = i + 1;
                    self.skip_spaces();
                    return;
                }
                _ => return,
            }
        }
    }

    /// In a function body, skip to where `declare -f` starts the next line:
    /// an unquoted `;` or newline (not inside `$(...)`, `${...}` or
    /// backquotes, which it prints on one line), or just before a `{` that
    /// opens a group mid-statement (`cond && { ... }`).
    pub fn skip_to_line_start(&mut self) {
        let mut prev = ' ';
        while let Some(ch) = self.peek() {
            match ch {
                '\n' | ';' => {
                    self.bump();
                    return;
                }
                // (as `eat_keyword("{")` takes it, so the caller moves on)
                '{' if (prev.is_whitespace() || "&|;(".contains(prev))
                    && matches!(self.peek_at(1), Some(' ' | '\t')) =>
                {
                    return;
                }
                '\\' => {
                    self.bump();
                    self.bump();
                }
                '\'' => {
                    self.bump();
                    if self.skip_until('\'').is_err() {
                        return;
                    }
                }
                '"' => {
                    self.bump();
                    if self.skip_dquoted().is_err() {
                        return;
                    }
                }
                '`' => {
                    self.bump();
                    while let Some(c) = self.bump() {
                        if c == '\\' {
                            self.bump();
                        } else if c == '`' {
                            break;
                        }
                    }
                }
                '$' if matches!(self.peek_at(1), Some('(' | '{')) => {
                    let (open, close) = if self.peek_at(1) == Some('(') {
                        ('(', ')')
                    } else {
                        ('{', '}')
                    };
                    self.bump();
                    self.bump();
                    let mut depth = 1;
                    while depth > 0 {
                        match self.bump() {
                            None => return,
                            Some('\\') => {
                                self.bump();
                            }
                            Some('\'') => {
                                if self.skip_until('\'').is_err() {
                                    return;
                                }
                            }
                            Some('"') => {
                                if self.skip_dquoted().is_err() {
                                    return;
                                }
                            }
                            Some(c) if c == open => depth += 1,
                            Some(c) if c == close => depth -= 1,
                            Some(_) => {}
                        }
                    }
                }
                _ => {
                    self.bump();
                }
            }
            prev = ch;
        }
    }

    /// Step over `case WORD in` (the items that follow start lines of
    /// their own in `declare -f` output). True when it did.
    pub fn eat_case_header(&mut self) -> bool {
        if !self.at_keyword("case") {
            return false;
        }
        let save = self.pos;
        self.advance_keyword("case");
        let mut words = 0;
        loop {
            self.skip_spaces();
            if self.at_keyword("in") && words > 0 {
                self.advance_keyword("in");
                return true;
            }
            let start = self.pos;
            while let Some(c) = self.peek() {
                if c.is_whitespace() || c == ';' {
                    break;
                }
                self.bump();
            }
            if self.pos == start {
                self.pos = save;
                return false;
            }
            words += 1;
        }
    }

    /// Skip to the end of this statement: an unquoted `;` or newline.
    pub fn skip_statement(&mut self) {
        while let Some(ch) = self.bump() {
            let quoted = match ch {
                '\n' | ';' => break,
                '\\' => {
                    self.bump();
                    Ok(())
                }
                '\'' => self.skip_until('\''),
                '"' => self.skip_dquoted(),
                _ => Ok(()),
            };
            if quoted.is_err() {
                break;
            }
        }
    }

    pub fn skip_line(&mut self) {
        while let Some(ch) = self.bump() {
            if ch == '\n' {
                break;
            }
        }
    }

    pub fn skip_blank_and_comments(&mut self) {
        loop {
            self.skip_spaces();
            match self.peek() {
                Some('\n' | ';') => {
                    self.bump();
                }
                Some('#') => self.skip_line(),
                _ => break,
            }
        }
    }

    /// At the end of a statement: the end of the text or line, `;` or a
    /// comment (blanks before it skipped).
    pub fn at_statement_end(&mut self) -> bool {
        self.skip_spaces();
        matches!(self.peek(), None | Some('\n' | ';' | '#'))
    }

    /// One argument `${NAME:=TEXT}` or `${NAME=TEXT}` (bare or in double
    /// quotes), as after `:`: the name, whether it had the colon, and TEXT,
    /// which holds no quote, brace, backslash, backquote, command
    /// substitution, tilde or glob character. None (nothing consumed)
    /// otherwise.
    pub fn default_assignment(&mut self) -> Option<(String, bool, String)> {
        let (save, line) = (self.pos, self.line);
        let got = (|| {
            let quoted = self.eat('"');
            if !(self.eat('$') && self.eat('{')) {
                return None;
            }
            let name = self.name()?;
            let colon = self.eat(':');
            if !self.eat('=') {
                return None;
            }
            let mut text = String::new();
            loop {
                match self.bump()? {
                    '}' => break,
                    '"' | '\'' | '{' | '\\' | '`' | '~' | '*' | '?' | '[' | '\n' => return None,
                    '$' if self.peek() == Some('(') => return None,
                    c => text.push(c),
                }
            }
            if quoted && !self.eat('"') {
                return None;
            }
            matches!(self.peek(), None | Some(' ' | '\t' | '\n' | ';' | '#'))
                .then_some((name, colon, text))
        })();
        if got.is_none() {
            (self.pos, self.line) = (save, line);
        }
        got
    }

    /// A lone `NAME` (as in `export NAME`), consumed when it is one.
    pub fn bare_name(&mut self) -> bool {
        let (save, line) = (self.pos, self.line);
        if self.name().is_some()
            && matches!(self.peek(), None | Some(' ' | '\t' | '\n' | ';' | '#'))
        {
            return true;
        }
        (self.pos, self.line) = (save, line);
        false
    }

    /// After an assignment: only `;`, a comment or the end of the line.
    pub fn end_of_statement(&mut self) -> R<()> {
        self.skip_spaces();
        match self.peek() {
            None | Some('\n' | ';' | '#') => Ok(()),
            _ => self.refuse(format!(
                "more than an assignment on one line ({})",
                self.rest_of_line().trim()
            )),
        }
    }

    fn name(&mut self) -> Option<String> {
        if !self.peek().is_some_and(is_name_start) {
            return None;
        }
        let mut s = String::new();
        while let Some(ch) = self.peek().filter(|c| is_name(*c)) {
            s.push(ch);
            self.bump();
        }
        Some(s)
    }

    /// `name() {...}`, `function name {...}`: the name, the body's first
    /// line and its text. Restores the position when it is not one.
    pub fn function(&mut self) -> R<Option<(String, usize, String)>> {
        let (save, line) = (self.pos, self.line);
        let mut kw = false;
        if self.rest_of_line().starts_with("function ") {
            self.pos += "function ".len();
            self.skip_spaces();
            kw = true;
        }
        let Some(name) = self.name_with_dashes() else {
            (self.pos, self.line) = (save, line);
            return Ok(None);
        };
        self.skip_spaces();
        let parens = self.peek() == Some('(') && self.peek_at(1) == Some(')');
        if parens {
            self.pos += 2;
        }
        if !parens && !kw {
            (self.pos, self.line) = (save, line);
            return Ok(None);
        }
        self.skip_blank_and_comments();
        if self.peek() != Some('{') {
            return self.refuse(format!("function {name} without a {{ }} body"));
        }
        self.bump();
        let body_line = self.line;
        let start = self.pos;
        let mut depth = 1;
        // Here-documents opened on the current line: (delimiter, <<-).
        let mut pending: Vec<(String, bool)> = Vec::new();
        // Where their text is, to blank it out of the body.
        let mut texts: Vec<(usize, usize)> = Vec::new();
        while depth > 0 {
            match self.bump() {
                None => return self.refuse(format!("function {name} is not closed")),
                Some('\\') => {
                    self.bump();
                }
                Some('\'') => self.skip_until('\'')?,
                Some('"') => self.skip_dquoted()?,
                Some('#') if self.pos >= 2 && matches!(self.c[self.pos - 2], ' ' | '\t' | '\n') => {
                    // To the end of the line, not past it: a here-document
                    // opened before the comment starts on the next line.
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                Some('{') => depth += 1,
                Some('}') => depth -= 1,
                Some('<') if self.peek() == Some('<') && self.peek_at(1) != Some('<') => {
                    self.bump();
                    let strip = self.eat('-');
                    self.skip_spaces();
                    let delim = self.heredoc_delimiter(&name)?;
                    pending.push((delim, strip));
                }
                Some('\n') if !pending.is_empty() => {
                    for (delim, strip) in std::mem::take(&mut pending) {
                        let from = self.pos;
                        self.heredoc_text(&name, &delim, strip)?;
                        texts.push((from, self.pos));
                    }
                }
                _ => {}
            }
        }
        if !pending.is_empty() {
            return self.refuse(format!(
                "a here-document in function {name} whose text does not start before the function ends"
            ));
        }
        // The text of a here-document is not the recipe's code: blanked
        // (its lines kept, for line numbers), so no later scan reads it.
        let mut chars: Vec<char> = self.c[start..self.pos - 1].to_vec();
        for (a, b) in texts {
            for ch in &mut chars[a - start..b - start] {
                if *ch != '\n' {
                    *ch = ' ';
                }
            }
        }
        Ok(Some((name, body_line, chars.into_iter().collect())))
    }

    /// The delimiter word after `<<` (quotes removed: 'EOF', "EOF", \EOF
    /// and EOF all end at a line `EOF`).
    fn heredoc_delimiter(&mut self, func: &str) -> R<String> {
        let mut d = String::new();
        while let Some(ch) = self.peek() {
            match ch {
                ' ' | '\t' | '\n' | ';' | '&' | '|' | '<' | '>' | '(' | ')' => break,
                '\'' | '"' => {
                    self.bump();
                    loop {
                        match self.bump() {
                            None | Some('\n') => {
                                return self.refuse(format!(
                                    "a here-document delimiter in function {func} that is not closed"
                                ));
                            }
                            Some(c) if c == ch => break,
                            Some(c) => d.push(c),
                        }
                    }
                }
                '\\' => {
                    self.bump();
                    if let Some(c) = self.bump() {
                        d.push(c);
                    }
                }
                '$' | '`' => {
                    return self.refuse(format!(
                        "a here-document in function {func} whose delimiter is expanded"
                    ));
                }
                c => {
                    self.bump();
                    d.push(c);
                }
            }
        }
        if d.is_empty() {
            return self.refuse(format!(
                "a here-document in function {func} without a delimiter"
            ));
        }
        Ok(d)
    }

    /// Skip a here-document's text, up to and with its delimiter line
    /// (`<<-`: leading tabs do not count). In a `package` function, text
    /// that makepkg's scan of `declare -f` could take for an override
    /// (`  depends=...`) is refused rather than guessed at.
    fn heredoc_text(&mut self, func: &str, delim: &str, strip: bool) -> R<()> {
        loop {
            if self.eof() {
                return self.refuse(format!(
                    "a here-document in function {func} that is not closed (no line {delim:?})"
                ));
            }
            let line_no = self.line;
            let text = self.rest_of_line();
            self.skip_line();
            let cmp = if strip {
                text.trim_start_matches('\t')
            } else {
                &text
            };
            if cmp == delim {
                return Ok(());
            }
            if func.starts_with("package") {
                let t = text.trim_start_matches([' ', '\t']);
                let looks = crate::pkgbuild::OVERRIDES.iter().any(|n| {
                    t.strip_prefix(n).is_some_and(|r| {
                        let r =
                            r.trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '_');
                        r.starts_with('=') || r.starts_with("+=")
                    })
                });
                if looks {
                    return Err(Refusal {
                        line: line_no,
                        what: format!(
                            "here-document text in function {func} that makepkg may read as an assignment ({})",
                            text.trim()
                        ),
                    });
                }
            }
        }
    }

    fn name_with_dashes(&mut self) -> Option<String> {
        if !self.peek().is_some_and(is_name_start) {
            return None;
        }
        let mut s = String::new();
        while let Some(ch) = self
            .peek()
            .filter(|c| is_name(*c) || matches!(c, '-' | '.' | '+' | '@'))
        {
            s.push(ch);
            self.bump();
        }
        Some(s)
    }

    fn skip_until(&mut self, end: char) -> R<()> {
        loop {
            match self.bump() {
                None => return self.refuse(format!("an unterminated {end} quote")),
                Some(c) if c == end => return Ok(()),
                _ => {}
            }
        }
    }

    fn skip_dquoted(&mut self) -> R<()> {
        loop {
            match self.bump() {
                None => return self.refuse("an unterminated \" quote"),
                Some('\\') => {
                    self.bump();
                }
                Some('"') => return Ok(()),
                _ => {}
            }
        }
    }

    /// `NAME=word`, `NAME+=word`, `NAME=( words )`: evaluated against `env`.
    pub fn assignment(&mut self, env: &Env) -> R<Option<(String, bool, Val)>> {
        let (save, line) = (self.pos, self.line);
        let Some(name) = self.name() else {
            return Ok(None);
        };
        let append = self.peek() == Some('+') && self.peek_at(1) == Some('=');
        if append {
            self.pos += 2;
        } else if self.peek() == Some('=') {
            self.pos += 1;
        } else {
            (self.pos, self.line) = (save, line);
            return Ok(None);
        }
        if self.peek() == Some('(') {
            self.bump();
            let mut items = Vec::new();
            loop {
                self.skip_spaces();
                match self.peek() {
                    None => return self.refuse(format!("the array {name} is not closed")),
                    Some('\n') => {
                        self.bump();
                    }
                    Some('#') => self.skip_line(),
                    Some(')') => {
                        self.bump();
                        break;
                    }
                    Some(c @ (';' | '|' | '&' | '<' | '>')) => {
                        return self.refuse(format!("a '{c}' inside the array {name}"));
                    }
                    _ => {
                        let before = self.pos;
                        items.extend(self.word(env, true)?);
                        // Never loop without consuming input.
                        if self.pos == before {
                            return self
                                .refuse(format!("{} in the array {name}", self.describe_here()));
                        }
                    }
                }
            }
            return Ok(Some((name, append, Val::Arr(items))));
        }
        let v = self.word(env, false)?;
        Ok(Some((
            name,
            append,
            Val::Str(v.into_iter().next().unwrap_or_default()),
        )))
    }

    /// The raw text of the next word (quotes kept), up to an unquoted space,
    /// newline, `;`, `)` or comment.
    fn raw_word(&mut self) -> R<String> {
        let mut s = String::new();
        let mut depth = 0usize;
        while let Some(ch) = self.peek() {
            if depth == 0 && matches!(ch, ' ' | '\t' | '\n' | ';' | ')' | '|' | '&' | '<' | '>') {
                break;
            }
            if depth == 0 && ch == '(' {
                return self.refuse(format!("an unexpected '(' in {s}("));
            }
            self.bump();
            s.push(ch);
            match ch {
                '\\' => {
                    if let Some(n) = self.bump() {
                        s.push(n);
                    }
                }
                '\'' => loop {
                    match self.bump() {
                        None => return self.refuse("an unterminated ' quote"),
                        Some(c) => {
                            s.push(c);
                            if c == '\'' {
                                break;
                            }
                        }
                    }
                },
                '"' => loop {
                    match self.bump() {
                        None => return self.refuse("an unterminated \" quote"),
                        Some('\\') => {
                            s.push('\\');
                            if let Some(n) = self.bump() {
                                s.push(n);
                            }
                        }
                        Some(c) => {
                            s.push(c);
                            if c == '"' {
                                break;
                            }
                        }
                    }
                },
                '$' if self.peek() == Some('{') => {
                    s.push('{');
                    self.bump();
                    depth += 1;
                }
                '$' if self.peek() == Some('(') => {
                    return self.refuse("command substitution $(...)");
                }
                '`' => return self.refuse("command substitution `...`"),
                '}' if depth > 0 => depth -= 1,
                _ => {}
            }
        }
        Ok(s)
    }

    /// The fields one word yields: brace expansion (in arrays), expansion,
    /// then field splitting of unquoted expansions.
    fn word(&mut self, env: &Env, array: bool) -> R<Vec<String>> {
        let line = self.line;
        let raw = self.raw_word()?;
        let raws = if array {
            brace_expand(&raw).map_err(|what| Refusal { line, what })?
        } else {
            vec![raw]
        };
        let mut out = Vec::new();
        for r in raws {
            let mut sub = Lexer::new(&r);
            sub.line = line;
            let pieces = sub.pieces(env, array)?;
            out.extend(fields(pieces, array));
        }
        Ok(out)
    }

    /// Expand the (already delimited) text into pieces.
    fn pieces(&mut self, env: &Env, array: bool) -> R<Vec<Piece>> {
        let mut v: Vec<Piece> = Vec::new();
        let mut lit = String::new();
        let mut first = true;
        while let Some(ch) = self.bump() {
            match ch {
                '\\' => {
                    if let Some(n) = self.bump()
                        && n != '\n'
                    {
                        lit.push(n);
                    }
                }
                '\'' => {
                    while let Some(c) = self.bump() {
                        if c == '\'' {
                            break;
                        }
                        lit.push(c);
                    }
                }
                '"' => {
                    while let Some(c) = self.bump() {
                        match c {
                            '"' => break,
                            '\\' => match self.bump() {
                                Some(n @ ('$' | '"' | '\\' | '`')) => lit.push(n),
                                Some('\n') => {}
                                Some(n) => {
                                    lit.push('\\');
                                    lit.push(n);
                                }
                                None => {}
                            },
                            '$' => {
                                let val = self.dollar(env)?;
                                match val {
                                    Some(Exp::One(s)) => lit.push_str(&s),
                                    Some(Exp::Many(items)) => {
                                        // "${a[@]}": one field per element.
                                        let n = items.len();
                                        for (i, it) in items.into_iter().enumerate() {
                                            lit.push_str(&it);
                                            if i + 1 < n {
                                                v.push(Piece {
                                                    text: std::mem::take(&mut lit),
                                                    split: false,
                                                });
                                                v.push(Piece {
                                                    text: "\u{0}".into(),
                                                    split: true,
                                                });
                                            }
                                        }
                                    }
                                    None => lit.push('$'),
                                }
                            }
                            '`' => return self.refuse("command substitution `...`"),
                            c => lit.push(c),
                        }
                    }
                }
                '$' => {
                    let val = self.dollar(env)?;
                    match val {
                        None => lit.push('$'),
                        Some(e) => {
                            v.push(Piece {
                                text: std::mem::take(&mut lit),
                                split: false,
                            });
                            let text = match e {
                                Exp::One(s) => s,
                                Exp::Many(items) => items.join(" "),
                            };
                            v.push(Piece { text, split: true });
                        }
                    }
                }
                '~' if first && array => return self.refuse("tilde expansion (~) in an array"),
                '*' | '?' | '[' if array => {
                    return self.refuse(format!("an unquoted glob character '{ch}' in an array (it depends on the files present)"));
                }
                c => lit.push(c),
            }
            first = false;
        }
        v.push(Piece {
            text: lit,
            split: false,
        });
        Ok(v)
    }

    /// After a `$`: the expansion, or None for a literal `$`.
    fn dollar(&mut self, env: &Env) -> R<Option<Exp>> {
        match self.peek() {
            Some('{') => {
                self.bump();
                let mut inner = String::new();
                let mut depth = 1;
                loop {
                    match self.bump() {
                        None => return self.refuse("an unterminated ${"),
                        Some('\\') => {
                            inner.push('\\');
                            if let Some(n) = self.bump() {
                                inner.push(n);
                            }
                        }
                        Some('{') => {
                            depth += 1;
                            inner.push('{');
                        }
                        Some('}') => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                            inner.push('}');
                        }
                        Some(c) => inner.push(c),
                    }
                }
                self.param(&inner, env).map(Some)
            }
            Some('(') => self.refuse("command substitution $(...)"),
            Some('\'') => self.refuse("ANSI-C quoting $'...'"),
            Some(c) if is_name_start(c) => {
                let n = self.name().unwrap_or_default();
                Ok(Some(Exp::One(lookup(env, &n, self.line)?.scalar())))
            }
            Some(c) if c.is_ascii_digit() || "@*#?$!-".contains(c) => {
                self.refuse(format!("the special parameter ${c}"))
            }
            _ => Ok(None),
        }
    }

    /// `${...}` contents.
    fn param(&self, inner: &str, env: &Env) -> R<Exp> {
        let line = self.line;
        let refuse = |w: String| Err(Refusal { line, what: w });
        if let Some(rest) = inner.strip_prefix('#') {
            let (name, idx) = split_index(rest);
            let v = lookup(env, name, line)?;
            return Ok(Exp::One(match idx {
                Some("@" | "*") => v.list().len().to_string(),
                _ => v.scalar().chars().count().to_string(),
            }));
        }
        if inner.starts_with('!') {
            return refuse(format!("indirect expansion ${{{inner}}}"));
        }
        let nlen = inner.chars().take_while(|c| is_name(*c)).count();
        if nlen == 0 {
            return refuse(format!("the expansion ${{{inner}}}"));
        }
        let name = &inner[..nlen];
        let mut rest = &inner[nlen..];
        let mut idx = None;
        if rest.starts_with('[') {
            let Some(end) = rest.find(']') else {
                return refuse(format!("the expansion ${{{inner}}}"));
            };
            idx = Some(&rest[1..end]);
            rest = &rest[end + 1..];
        }
        let set = env.contains_key(name);
        let base: Vec<String> = match (env.get(name), idx) {
            (None, _) => Vec::new(),
            (Some(v), Some("@" | "*")) => v.list(),
            (Some(v), Some(i)) => match i.parse::<usize>() {
                Ok(n) => v.list().get(n).cloned().into_iter().collect(),
                Err(_) => return refuse(format!("the array index [{i}]")),
            },
            (Some(v), None) => vec![v.scalar()],
        };
        let many = matches!(idx, Some("@" | "*"));
        let ev = |w: &str| -> R<String> {
            let mut l = Lexer::new(w);
            l.line = line;
            let p = l.pieces(env, false)?;
            Ok(p.into_iter().map(|p| p.text).collect())
        };
        let out: Vec<String> = if rest.is_empty() {
            if !set {
                lookup(env, name, line)?;
            }
            base
        } else if let Some(w) = rest.strip_prefix(":-") {
            if base.iter().all(|s| s.is_empty()) {
                vec![ev(w)?]
            } else {
                base
            }
        } else if let Some(w) = rest.strip_prefix(":+") {
            if base.iter().all(|s| s.is_empty()) {
                vec![String::new()]
            } else {
                vec![ev(w)?]
            }
        } else if let Some(w) = rest.strip_prefix('-') {
            if set { base } else { vec![ev(w)?] }
        } else if let Some(w) = rest.strip_prefix('+') {
            if set {
                vec![ev(w)?]
            } else {
                vec![String::new()]
            }
        } else {
            if !set {
                lookup(env, name, line)?;
            }
            let op = |s: &str| -> R<String> {
                if let Some(p) = rest.strip_prefix("##") {
                    Ok(strip_prefix(s, &ev(p)?, true))
                } else if let Some(p) = rest.strip_prefix('#') {
                    Ok(strip_prefix(s, &ev(p)?, false))
                } else if let Some(p) = rest.strip_prefix("%%") {
                    Ok(strip_suffix(s, &ev(p)?, true))
                } else if let Some(p) = rest.strip_prefix('%') {
                    Ok(strip_suffix(s, &ev(p)?, false))
                } else if let Some(p) = rest.strip_prefix('/') {
                    let (mode, p) = match p.chars().next() {
                        Some('/') => ('g', &p[1..]),
                        Some('#') => ('#', &p[1..]),
                        Some('%') => ('%', &p[1..]),
                        _ => ('1', p),
                    };
                    let (pat, rep) = split_unescaped(p, '/');
                    replace(s, &ev(pat)?, &ev(rep.unwrap_or(""))?, mode).ok_or_else(|| Refusal {
                        line,
                        what: format!("the pattern in ${{{inner}}}"),
                    })
                } else if matches!(rest, "^^" | ",," | "^" | ",") {
                    let upper = rest.starts_with('^');
                    let all = rest.len() == 2;
                    let mut out = String::with_capacity(s.len());
                    for (i, c) in s.chars().enumerate() {
                        if i > 0 && !all {
                            out.push(c);
                            continue;
                        }
                        // bash maps one character to one (towupper): where
                        // Unicode's mapping is longer (ß -> SS), the locale
                        // decides; refuse rather than guess.
                        let m: Vec<char> = if upper {
                            c.to_uppercase().collect()
                        } else {
                            c.to_lowercase().collect()
                        };
                        match m.as_slice() {
                            [one] => out.push(*one),
                            _ => {
                                return Err(Refusal {
                                    line,
                                    what: format!(
                                        "the case change ${{{inner}}} of {c:?}, which has no one-character mapping"
                                    ),
                                });
                            }
                        }
                    }
                    Ok(out)
                } else if let Some(r) = rest.strip_prefix(':') {
                    let (off, len) = split_unescaped(r, ':');
                    let off: i64 = off.trim().parse().map_err(|_| Refusal {
                        line,
                        what: format!("the substring ${{{inner}}}"),
                    })?;
                    let chars: Vec<char> = s.chars().collect();
                    let start = if off < 0 {
                        (chars.len() as i64 + off).max(0) as usize
                    } else {
                        (off as usize).min(chars.len())
                    };
                    let end = match len {
                        Some(l) => {
                            let l: i64 = l.trim().parse().map_err(|_| Refusal {
                                line,
                                what: format!("the substring ${{{inner}}}"),
                            })?;
                            if l < 0 {
                                (chars.len() as i64 + l).max(start as i64) as usize
                            } else {
                                (start + l as usize).min(chars.len())
                            }
                        }
                        None => chars.len(),
                    };
                    Ok(chars[start..end].iter().collect())
                } else {
                    Err(Refusal {
                        line,
                        what: format!("the expansion ${{{inner}}}"),
                    })
                }
            };
            base.iter().map(|s| op(s)).collect::<R<Vec<_>>>()?
        };
        Ok(if many {
            Exp::Many(out)
        } else {
            Exp::One(out.into_iter().next().unwrap_or_default())
        })
    }
}

enum Exp {
    One(String),
    Many(Vec<String>),
}

fn lookup<'a>(env: &'a Env, name: &str, line: usize) -> R<&'a Val> {
    env.get(name).ok_or_else(|| Refusal {
        line,
        what: format!(
            "${name} is not set by the recipe (makepkg would see it from its environment)"
        ),
    })
}

fn split_index(s: &str) -> (&str, Option<&str>) {
    match s.find('[') {
        Some(i) if s.ends_with(']') => (&s[..i], Some(&s[i + 1..s.len() - 1])),
        _ => (s, None),
    }
}

fn split_unescaped(s: &str, sep: char) -> (&str, Option<&str>) {
    let mut esc = false;
    for (i, c) in s.char_indices() {
        if esc {
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == sep {
            return (&s[..i], Some(&s[i + 1..]));
        }
    }
    (s, None)
}

/// Field splitting: unquoted expansion text splits on blanks; NUL marks a
/// field break from "${a[@]}". Scalars are never split.
fn fields(pieces: Vec<Piece>, array: bool) -> Vec<String> {
    if !array {
        return vec![
            pieces
                .into_iter()
                .map(|p| {
                    if p.text == "\u{0}" {
                        " ".to_string()
                    } else {
                        p.text
                    }
                })
                .collect(),
        ];
    }
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for p in pieces {
        if p.text == "\u{0}" && p.split {
            out.push(cur.take().unwrap_or_default());
            cur = Some(String::new());
            continue;
        }
        if !p.split {
            if !p.text.is_empty() || cur.is_some() {
                cur.get_or_insert_with(String::new).push_str(&p.text);
            } else {
                cur.get_or_insert_with(String::new);
            }
            continue;
        }
        let starts_blank = p.text.starts_with([' ', '\t', '\n']);
        let ends_blank = p.text.ends_with([' ', '\t', '\n']);
        let parts: Vec<&str> = p
            .text
            .split([' ', '\t', '\n'])
            .filter(|s| !s.is_empty())
            .collect();
        if parts.is_empty() {
            if starts_blank && let Some(c) = cur.take().filter(|c| !c.is_empty()) {
                out.push(c);
            }
            continue;
        }
        for (i, part) in parts.iter().enumerate() {
            if i == 0 && !starts_blank {
                cur.get_or_insert_with(String::new).push_str(part);
            } else {
                if let Some(c) = cur.take()
                    && (!c.is_empty() || i > 0)
                {
                    out.push(c);
                }
                cur = Some(part.to_string());
            }
        }
        if ends_blank && let Some(c) = cur.take() {
            out.push(c);
        }
    }
    if let Some(c) = cur {
        out.push(c);
    }
    // A word that was only an empty unquoted expansion yields no field.
    out
}

/// Brace expansion of a raw word: `a{b,c}d`, `{1..3}`; quoted braces stay.
fn brace_expand(raw: &str) -> Result<Vec<String>, String> {
    let c: Vec<char> = raw.chars().collect();
    let (mut i, mut q, mut depth_dollar) = (0, None::<char>, 0);
    let mut open = None;
    while i < c.len() {
        let ch = c[i];
        match (q, ch) {
            (None, '\\') => i += 1,
            (None, '\'' | '"') => q = Some(ch),
            (Some(x), _) if ch == x => q = None,
            (Some('"'), '\\') => i += 1,
            (None, '$') if c.get(i + 1) == Some(&'{') => {
                depth_dollar += 1;
                i += 1;
            }
            (None, '}') if depth_dollar > 0 => depth_dollar -= 1,
            (None, '{') if depth_dollar == 0 => {
                open = Some(i);
                break;
            }
            _ => {}
        }
        i += 1;
    }
    let Some(o) = open else {
        return Ok(vec![raw.to_string()]);
    };
    // find the matching close and top-level commas
    let (mut depth, mut j, mut commas, mut q) = (0, o, Vec::new(), None::<char>);
    let mut close = None;
    while j < c.len() {
        let ch = c[j];
        match (q, ch) {
            (None, '\\') => j += 1,
            (None, '\'' | '"') => q = Some(ch),
            (Some(x), _) if ch == x => q = None,
            (None, '{') => depth += 1,
            (None, '}') => {
                depth -= 1;
                if depth == 0 {
                    close = Some(j);
                    break;
                }
            }
            (None, ',') if depth == 1 => commas.push(j),
            _ => {}
        }
        j += 1;
    }
    let Some(cl) = close else {
        return Ok(vec![raw.to_string()]);
    };
    let pre: String = c[..o].iter().collect();
    let post: String = c[cl + 1..].iter().collect();
    let body: String = c[o + 1..cl].iter().collect();
    let alts: Vec<String> = if commas.is_empty() {
        match body.split_once("..") {
            Some((a, b)) if !a.is_empty() && !b.is_empty() && !b.contains("..") => {
                match (a.parse::<i64>(), b.parse::<i64>()) {
                    (Ok(x), Ok(y)) => {
                        if (x - y).abs() > 10_000 {
                            return Err("a brace range over 10000 items".into());
                        }
                        if x <= y {
                            (x..=y).map(|n| n.to_string()).collect()
                        } else {
                            (y..=x).rev().map(|n| n.to_string()).collect()
                        }
                    }
                    _ => return Err(format!("the brace range {{{body}}}")),
                }
            }
            // `{x}` without comma or range is literal in bash.
            _ => {
                let rest = brace_expand(&post)?;
                return Ok(rest
                    .into_iter()
                    .map(|r| format!("{pre}{{{body}}}{r}"))
                    .collect());
            }
        }
    } else {
        let mut v = Vec::new();
        let mut s = o + 1;
        for &k in commas.iter().chain(std::iter::once(&cl)) {
            v.push(c[s..k].iter().collect());
            s = k + 1;
        }
        v
    };
    let mut out = Vec::new();
    for a in alts {
        for e in brace_expand(&format!("{pre}{a}{post}"))? {
            out.push(e);
        }
    }
    Ok(out)
}

/// Glob match of `*`, `?` and literals; `[` patterns are not modelled.
fn glob(p: &[char], s: &[char]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some('*') => (0..=s.len()).any(|i| glob(&p[1..], &s[i..])),
        Some('?') => !s.is_empty() && glob(&p[1..], &s[1..]),
        Some('\\') if p.len() > 1 => s.first() == Some(&p[1]) && glob(&p[2..], &s[1..]),
        Some(c) => s.first() == Some(c) && glob(&p[1..], &s[1..]),
    }
}

fn strip_prefix(s: &str, pat: &str, longest: bool) -> String {
    let (p, c): (Vec<char>, Vec<char>) = (pat.chars().collect(), s.chars().collect());
    let mut ends: Vec<usize> = (0..=c.len()).filter(|&i| glob(&p, &c[..i])).collect();
    if !longest {
        ends.reverse();
    }
    match ends.pop() {
        Some(i) => c[i..].iter().collect(),
        None => s.to_string(),
    }
}

fn strip_suffix(s: &str, pat: &str, longest: bool) -> String {
    let (p, c): (Vec<char>, Vec<char>) = (pat.chars().collect(), s.chars().collect());
    let mut starts: Vec<usize> = (0..=c.len()).filter(|&i| glob(&p, &c[i..])).collect();
    if longest {
        starts.reverse();
    }
    match starts.pop() {
        Some(i) => c[..i].iter().collect(),
        None => s.to_string(),
    }
}

/// `${s/p/r}` (mode '1'), `//` ('g'), `/#` ('#'), `/%` ('%').
fn replace(s: &str, pat: &str, rep: &str, mode: char) -> Option<String> {
    if pat.contains('[') {
        return None;
    }
    let (p, c): (Vec<char>, Vec<char>) = (pat.chars().collect(), s.chars().collect());
    if p.is_empty() {
        return Some(match mode {
            '#' => format!("{rep}{s}"),
            '%' => format!("{s}{rep}"),
            _ => s.to_string(),
        });
    }
    let mut out = String::new();
    let mut i = 0;
    let mut done = false;
    while i <= c.len() {
        let anchored_ok = match mode {
            '#' => i == 0,
            '%' => true,
            _ => true,
        };
        if !done && anchored_ok {
            // longest match starting at i
            let hit = (i..=c.len()).rev().find(|&j| {
                (j > i || p.iter().all(|x| *x == '*'))
                    && glob(&p, &c[i..j])
                    && (mode != '%' || j == c.len())
            });
            if let Some(j) = hit {
                out.push_str(rep);
                if j == i {
                    if i < c.len() {
                        out.push(c[i]);
                    }
                    i += 1;
                } else {
                    i = j;
                }
                if mode != 'g' {
                    done = true;
                }
                continue;
            }
        }
        if i < c.len() {
            out.push(c[i]);
        }
        i += 1;
    }
    Some(out)
}
