//! Magento's `app/etc/env.php`, read without PHP: the file is a `return` of one array literal,
//! and the import needs two of its values, `crypt/key` and `db/table_prefix`.
//!
//! The reader understands what Magento writes there: `[...]` and `array(...)` arrays with
//! `'key' => value` entries, single- and double-quoted strings (a `crypt/key` of several keys
//! spans lines), numbers, `true`/`false`/`null`, and comments. Anything else (an expression, a
//! constant, a function call) is an error naming the line, never a guess.

/// The values of `env.php` the import reads.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvPhp {
    /// `crypt/key`: one or more keys separated by whitespace.
    pub crypt_key: String,
    /// `db/table_prefix`, empty when absent.
    pub table_prefix: String,
}

impl std::fmt::Debug for EnvPhp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvPhp")
            .field("table_prefix", &self.table_prefix)
            .finish_non_exhaustive()
    }
}

/// Why `env.php` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvPhpError {
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("it has no `crypt` => [`key` => ...] entry")]
    NoCryptKey,
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Scalar,
    Array(Vec<(Option<String>, Value)>),
}

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn line(&self) -> usize {
        1 + self.text[..self.at].iter().filter(|b| **b == b'\n').count()
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, EnvPhpError> {
        Err(EnvPhpError::Syntax {
            line: self.line(),
            message: message.into(),
        })
    }

    /// Skips whitespace and comments.
    fn skip(&mut self) {
        loop {
            while self.at < self.text.len() && self.text[self.at].is_ascii_whitespace() {
                self.at += 1;
            }
            let rest = &self.text[self.at..];
            if rest.starts_with(b"//") || rest.starts_with(b"#") {
                while self.at < self.text.len() && self.text[self.at] != b'\n' {
                    self.at += 1;
                }
            } else if rest.starts_with(b"/*") {
                match rest.windows(2).position(|w| w == b"*/") {
                    Some(end) => self.at += end + 2,
                    None => self.at = self.text.len(),
                }
            } else {
                return;
            }
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip();
        let rest = &self.text[self.at..];
        let matches =
            rest.len() >= token.len() && rest[..token.len()].eq_ignore_ascii_case(token.as_bytes());
        if matches {
            self.at += token.len();
        }
        matches
    }

    fn value(&mut self) -> Result<Value, EnvPhpError> {
        self.skip();
        if self.eat("[") {
            return self.entries("]");
        }
        if self.eat("array") {
            if !self.eat("(") {
                return self.error("expected `(` after `array`");
            }
            return self.entries(")");
        }
        match self.text.get(self.at) {
            Some(b'\'') => self.single_quoted().map(Value::Str),
            Some(b'"') => self.double_quoted().map(Value::Str),
            Some(c) if c.is_ascii_digit() || *c == b'-' => {
                while self
                    .text
                    .get(self.at)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || b"-+._".contains(c))
                {
                    self.at += 1;
                }
                Ok(Value::Scalar)
            }
            _ => {
                for word in ["true", "false", "null"] {
                    if self.eat(word) {
                        return Ok(Value::Scalar);
                    }
                }
                self.error("expected a string, a number, true, false, null or an array")
            }
        }
    }

    fn entries(&mut self, close: &str) -> Result<Value, EnvPhpError> {
        let mut entries = Vec::new();
        loop {
            if self.eat(close) {
                return Ok(Value::Array(entries));
            }
            let first = self.value()?;
            let entry = if self.eat("=>") {
                let key = match first {
                    Value::Str(s) => Some(s),
                    Value::Scalar => None,
                    Value::Array(_) => return self.error("an array cannot be a key"),
                };
                (key, self.value()?)
            } else {
                (None, first)
            };
            entries.push(entry);
            if !self.eat(",") {
                if self.eat(close) {
                    return Ok(Value::Array(entries));
                }
                return self.error(format!("expected `,` or `{close}`"));
            }
        }
    }

    fn single_quoted(&mut self) -> Result<String, EnvPhpError> {
        self.at += 1;
        let mut out = Vec::new();
        while let Some(&c) = self.text.get(self.at) {
            self.at += 1;
            match c {
                b'\'' => return self.text_of(out),
                b'\\' if matches!(self.text.get(self.at), Some(b'\'' | b'\\')) => {
                    out.push(self.text[self.at]);
                    self.at += 1;
                }
                _ => out.push(c),
            }
        }
        self.error("a string is not closed")
    }

    fn double_quoted(&mut self) -> Result<String, EnvPhpError> {
        self.at += 1;
        let mut out = Vec::new();
        while let Some(&c) = self.text.get(self.at) {
            self.at += 1;
            match c {
                b'"' => return self.text_of(out),
                b'$' => return self.error("a double-quoted string with a variable"),
                b'\\' => {
                    let Some(&e) = self.text.get(self.at) else {
                        break;
                    };
                    self.at += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'\\' | b'"' | b'$' => out.push(e),
                        _ => out.extend([b'\\', e]),
                    }
                }
                _ => out.push(c),
            }
        }
        self.error("a string is not closed")
    }

    fn text_of(&self, bytes: Vec<u8>) -> Result<String, EnvPhpError> {
        String::from_utf8(bytes).or_else(|_| self.error("a string that is not UTF-8"))
    }
}

fn get<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    match value {
        Value::Array(entries) => entries
            .iter()
            .find(|(k, _)| k.as_deref() == Some(key))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// Reads `env.php`'s text.
pub fn parse_env_php(text: &str) -> Result<EnvPhp, EnvPhpError> {
    let mut p = Parser {
        text: text.as_bytes(),
        at: 0,
    };
    p.skip();
    if !p.eat("<?php") {
        return p.error("expected `<?php`");
    }
    if !p.eat("return") {
        return p.error("expected `return` and the configuration array");
    }
    let root = p.value()?;
    p.eat(";");
    p.skip();
    if p.eat("?>") {
        p.skip();
    }
    if p.at != p.text.len() {
        return p.error("unexpected text after the configuration array");
    }
    let crypt_key = match get(&root, "crypt").and_then(|c| get(c, "key")) {
        Some(Value::Str(k)) => k.clone(),
        _ => return Err(EnvPhpError::NoCryptKey),
    };
    let table_prefix = match get(&root, "db").and_then(|d| get(d, "table_prefix")) {
        Some(Value::Str(p)) => p.clone(),
        _ => String::new(),
    };
    Ok(EnvPhp {
        crypt_key,
        table_prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magento_s_own_layout_reads() {
        let text = r#"<?php
return [
    'backend' => [
        'frontName' => 'admin_1x2y'
    ],
    // two keys: the second is current
    'crypt' => [
        'key' => '0123456789abcdef0123456789abcdef
base64AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8='
    ],
    'db' => [
        'table_prefix' => 'mg_',
        'connection' => [
            'default' => [
                'host' => 'localhost',
                'password' => 'it\'s \\ secret',
                'active' => '1',
                'port' => 3306,
                'persistent' => null,
            ]
        ]
    ],
    'x-frame-options' => "SAMEORIGIN",
    'cache_types' => ['config' => 1, 'layout' => true],
];
"#;
        let env = parse_env_php(text).expect("reads");
        assert_eq!(
            env.crypt_key,
            "0123456789abcdef0123456789abcdef\nbase64AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
        );
        assert_eq!(env.table_prefix, "mg_");
        assert!(!format!("{env:?}").contains("0123"));
    }

    #[test]
    fn the_old_array_syntax_reads() {
        let env = parse_env_php(
            "<?php\nreturn array ( 'crypt' => array ( 'key' => \"k\\$1\" ), );\n?>\n",
        )
        .unwrap();
        assert_eq!(env.crypt_key, "k$1");
        assert_eq!(env.table_prefix, "");
    }

    #[test]
    fn what_is_not_a_literal_is_named_by_line() {
        assert_eq!(
            parse_env_php("<?php\nreturn [\n 'crypt' => getenv('KEY'),\n];"),
            Err(EnvPhpError::Syntax {
                line: 3,
                message: "expected a string, a number, true, false, null or an array".into()
            })
        );
        assert_eq!(
            parse_env_php("<?php return ['db' => []];"),
            Err(EnvPhpError::NoCryptKey)
        );
        assert!(matches!(
            parse_env_php("<?php return ['crypt' => ['key' => 'unclosed]];"),
            Err(EnvPhpError::Syntax { .. })
        ));
    }
}
