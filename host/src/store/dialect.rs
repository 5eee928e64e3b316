//! The SQL the two backends do not share. Most queries are written once, in
//! the SQL both speak; the few that need a backend's own function (JSON
//! arrays, random ids, byte lengths) are built from a template once per
//! backend, on first use, and kept for the life of the process.

use std::sync::OnceLock;

/// Which database the store is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The embedded default: one file under the data dir.
    Sqlite,
    /// One database shared by several nodes.
    Postgres,
}

impl Dialect {
    /// The dialect of a database URL, `None` for an unsupported one.
    pub fn of_url(url: &str) -> Option<Dialect> {
        if url.starts_with("sqlite:") {
            Some(Dialect::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Dialect::Postgres)
        } else {
            None
        }
    }

    /// A set of the text elements of the JSON array `array` (an expression
    /// of type text), as a `value` column: `SELECT value FROM <this>`.
    fn json_elements(self, array: &str) -> String {
        match self {
            Dialect::Sqlite => format!("json_each({array})"),
            Dialect::Postgres => format!("jsonb_array_elements_text(CAST({array} AS jsonb))"),
        }
    }

    /// A delivery id made in the database: `dlv_`, the time `ms` (an
    /// expression, milliseconds) as 12 hex digits, 20 random hex digits.
    fn delivery_id(self, ms: &str) -> String {
        match self {
            Dialect::Sqlite => format!("printf('dlv_%012x', {ms} & 281474976710655) || lower(hex(randomblob(10)))"),
            Dialect::Postgres => format!(
                "'dlv_' || lpad(to_hex({ms} & 281474976710655), 12, '0') || substr(replace(gen_random_uuid()::text, '-', ''), 1, 20)"
            ),
        }
    }

    /// SQLite's hint to read a table through `index`; PostgreSQL's planner
    /// takes no hints and finds the partial index itself.
    fn indexed_by(self, index: &str) -> String {
        match self {
            Dialect::Sqlite => format!("INDEXED BY {index}"),
            Dialect::Postgres => String::new(),
        }
    }

    /// Expands the template's `{json:<expr>}`, `{delivery_id:<expr>}` and
    /// `{indexed_by:<index>}` (each argument without braces or colons).
    fn expand(self, template: &str) -> String {
        let mut out = String::with_capacity(template.len() + 64);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let Some(close) = rest[open..].find('}') else { break };
            let token = &rest[open + 1..open + close];
            match token.split_once(':') {
                Some(("json", expr)) => out.push_str(&self.json_elements(expr)),
                Some(("delivery_id", expr)) => out.push_str(&self.delivery_id(expr)),
                Some(("indexed_by", index)) => out.push_str(&self.indexed_by(index)),
                _ => out.push_str(&rest[open..=open + close]),
            }
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// `items` as the JSON array text a `{json:$N}` parameter binds.
pub(super) fn json_array<T: serde::Serialize>(items: &[T]) -> Result<String, super::StoreError> {
    serde_json::to_string(items).map_err(|e| super::StoreError::Database(e.to_string()))
}

/// A statement whose text depends on the backend: its template, expanded
/// for each backend the first time it runs there.
pub(super) struct Portable {
    template: &'static str,
    sqlite: OnceLock<String>,
    postgres: OnceLock<String>,
}

impl Portable {
    /// A statement from its template (see [`Dialect::expand`]).
    pub(super) const fn new(template: &'static str) -> Portable {
        Portable { template, sqlite: OnceLock::new(), postgres: OnceLock::new() }
    }

    /// The statement in `dialect`.
    pub(super) fn sql(&'static self, dialect: Dialect) -> &'static str {
        let cell = match dialect {
            Dialect::Sqlite => &self.sqlite,
            Dialect::Postgres => &self.postgres,
        };
        cell.get_or_init(|| dialect.expand(self.template))
    }
}

#[cfg(test)]
mod tests {
    use super::Dialect;

    #[test]
    fn templates_expand_per_backend_and_leave_other_braces_alone() {
        let template = "SELECT {delivery_id:$1} WHERE x IN (SELECT value FROM {json:$2}) AND y = '{}'";
        assert_eq!(
            Dialect::Sqlite.expand(template),
            "SELECT printf('dlv_%012x', $1 & 281474976710655) || lower(hex(randomblob(10))) \
             WHERE x IN (SELECT value FROM json_each($2)) AND y = '{}'"
        );
        let postgres = Dialect::Postgres.expand(template);
        assert!(postgres.contains("FROM jsonb_array_elements_text(CAST($2 AS jsonb))"), "{postgres}");
        assert!(postgres.contains("lpad(to_hex($1 & 281474976710655), 12, '0')"), "{postgres}");
    }

    #[test]
    fn urls_name_their_backend() {
        assert_eq!(Dialect::of_url("sqlite:///srv/th.db"), Some(Dialect::Sqlite));
        assert_eq!(Dialect::of_url("postgres://127.0.0.1/test"), Some(Dialect::Postgres));
        assert_eq!(Dialect::of_url("postgresql://h/db"), Some(Dialect::Postgres));
        assert_eq!(Dialect::of_url("mysql://h/db"), None);
    }
}
