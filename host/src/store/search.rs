//! Searches over a table, in the database: conditions in groups (ORed within a group, the
//! groups ANDed, as Magento's search criteria combine them), sort orders and a page, turned into
//! a `WHERE … ORDER BY … LIMIT … OFFSET …` with bound values for either backend.
//!
//! Callers name columns only through the [`Column`]s a table's module declares, so no text of a
//! request ever reaches the SQL: values are always bound. Text columns compare
//! case-insensitively (`lower()` on both sides, as Magento's MySQL collation compares), and a
//! `LIKE` pattern that starts with a literal ASCII prefix is also bounded to a range of the
//! column's `lower()` index, which neither backend derives by itself from a bound pattern.

use super::Backend;

/// A column a search may filter and sort on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The column's name in the table (never a request's text).
    pub name: &'static str,
    pub kind: ColumnKind,
}

/// How a column's values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Integer,
    /// Compared and sorted by `lower(column)`.
    Text,
}

/// A value to compare with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Int(i64),
    Text(String),
}

/// Binds `$binds` (a slice of [`Operand`]) to the sqlx query `$q`, in order; any kind of query
/// (`query`, `query_as`, `query_scalar`) on either backend.
macro_rules! bind_operands {
    ($q:expr, $binds:expr) => {{
        let mut q = $q;
        for b in $binds {
            q = match b {
                $crate::store::search::Operand::Int(i) => q.bind(*i),
                $crate::store::search::Operand::Text(t) => q.bind(t.clone()),
            };
        }
        q
    }};
}
pub(crate) use bind_operands;

impl rusqlite::ToSql for Operand {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(match self {
            Operand::Int(i) => rusqlite::types::ToSqlOutput::from(*i),
            Operand::Text(t) => rusqlite::types::ToSqlOutput::from(t.as_str()),
        })
    }
}

/// `=`, `<>`, `>`, `<`, `>=` or `<=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Eq,
    Neq,
    Gt,
    Lt,
    Gteq,
    Lteq,
}

impl Comparison {
    fn sql(self) -> &'static str {
        match self {
            Comparison::Eq => "=",
            Comparison::Neq => "<>",
            Comparison::Gt => ">",
            Comparison::Lt => "<",
            Comparison::Gteq => ">=",
            Comparison::Lteq => "<=",
        }
    }
}

/// One condition on one column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Compare(Column, Comparison, Operand),
    /// `LIKE` with `%` and `_` wildcards and `\` escaping them, case-insensitive; `negated`
    /// is `NOT LIKE`.
    Like {
        column: Column,
        pattern: String,
        negated: bool,
    },
    /// One of the values (`negated`: none of them).
    In {
        column: Column,
        values: Vec<Operand>,
        negated: bool,
    },
    /// `IS NULL` (`negated`: `IS NOT NULL`).
    Null {
        column: Column,
        negated: bool,
    },
}

/// Ascending or descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

/// What to find and which page of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    /// Every group must hold; within a group, one condition is enough.
    pub groups: Vec<Vec<Condition>>,
    /// The order; the table's key breaks ties, so that pages never overlap.
    pub sort: Vec<(Column, Direction)>,
    pub limit: u32,
    pub offset: u64,
}

/// A search as SQL pieces and the values to bind, in the order of their `$n` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sql {
    /// ` WHERE …`, or empty.
    pub filter: String,
    /// ` ORDER BY …`.
    pub order: String,
    /// ` LIMIT $n OFFSET $m`.
    pub page: String,
    /// The values of the filter's placeholders.
    pub filter_binds: Vec<Operand>,
    /// The filter's values, then the limit and the offset.
    pub binds: Vec<Operand>,
}

impl Search {
    /// The SQL of this search on `backend`; `key` is the table's unique key, the last sort.
    pub(crate) fn sql(&self, backend: Backend, key: &str) -> Sql {
        let mut b = Builder {
            backend,
            binds: Vec::new(),
        };
        let groups: Vec<String> = self
            .groups
            .iter()
            .filter(|g| !g.is_empty())
            .map(|group| {
                let parts: Vec<String> = group.iter().map(|c| b.condition(c)).collect();
                format!("({})", parts.join(" OR "))
            })
            .collect();
        let filter = if groups.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", groups.join(" AND "))
        };
        let filter_binds = b.binds.clone();
        let mut order: Vec<String> = self
            .sort
            .iter()
            .map(|(column, direction)| {
                format!(
                    "{} {}",
                    compared(*column),
                    match direction {
                        Direction::Asc => "ASC",
                        Direction::Desc => "DESC",
                    }
                )
            })
            .collect();
        order.push(format!("{key} ASC"));
        let limit = b.bind(Operand::Int(i64::from(self.limit)));
        let offset = b.bind(Operand::Int(i64::try_from(self.offset).unwrap_or(i64::MAX)));
        Sql {
            filter,
            order: format!(" ORDER BY {}", order.join(", ")),
            page: format!(" LIMIT {limit} OFFSET {offset}"),
            filter_binds,
            binds: b.binds,
        }
    }
}

/// The expression a column is compared and sorted by.
fn compared(column: Column) -> String {
    match column.kind {
        ColumnKind::Integer => column.name.to_owned(),
        ColumnKind::Text => format!("lower({})", column.name),
    }
}

struct Builder {
    backend: Backend,
    binds: Vec<Operand>,
}

impl Builder {
    /// A placeholder for `value`.
    fn bind(&mut self, value: Operand) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    /// A placeholder for `value` as `column` compares it.
    fn value(&mut self, column: Column, value: &Operand) -> String {
        let p = self.bind(value.clone());
        match column.kind {
            ColumnKind::Integer => p,
            ColumnKind::Text => format!("lower({p})"),
        }
    }

    fn condition(&mut self, condition: &Condition) -> String {
        match condition {
            Condition::Compare(column, op, value) => {
                let v = self.value(*column, value);
                format!("{} {} {v}", compared(*column), op.sql())
            }
            Condition::Like {
                column,
                pattern,
                negated,
            } => {
                let expr = compared(*column);
                let not = if *negated { "NOT " } else { "" };
                // Placeholders appear in the text in the order of their values (SQLite numbers
                // `$n` names by their first appearance).
                let range = match ascii_prefix_range(pattern) {
                    Some((low, high)) if !*negated && column.kind == ColumnKind::Text => {
                        // Byte order: SQLite's default collation; PostgreSQL's "C" one.
                        let ranged = match self.backend {
                            Backend::Sqlite => expr.clone(),
                            Backend::Postgres => format!("{expr} COLLATE \"C\""),
                        };
                        let low = self.bind(Operand::Text(low));
                        let high = self.bind(Operand::Text(high));
                        Some(format!("{ranged} >= {low} AND {ranged} < {high}"))
                    }
                    _ => None,
                };
                let p = self.value(*column, &Operand::Text(pattern.clone()));
                let like = format!("{expr} {not}LIKE {p} ESCAPE '\\'");
                match range {
                    Some(range) => format!("({range} AND {like})"),
                    None => like,
                }
            }
            Condition::In {
                column,
                values,
                negated,
            } => {
                let list: Vec<String> = values.iter().map(|v| self.value(*column, v)).collect();
                format!(
                    "{} {}IN ({})",
                    compared(*column),
                    if *negated { "NOT " } else { "" },
                    list.join(", ")
                )
            }
            Condition::Null { column, negated } => format!(
                "{} IS {}NULL",
                column.name,
                if *negated { "NOT " } else { "" }
            ),
        }
    }
}

/// For a `LIKE` pattern that starts with a literal ASCII prefix (`abc%…`, escapes resolved),
/// the byte range of lowercased values that start with it: `[prefix, prefix with its last
/// byte raised)`. `None` when the pattern starts with a wildcard or the prefix is not ASCII
/// (the backends lowercase non-ASCII letters differently).
fn ascii_prefix_range(pattern: &str) -> Option<(String, String)> {
    let mut prefix = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' | '_' => break,
            '\\' => match chars.next() {
                Some(escaped) => prefix.push(escaped),
                None => break,
            },
            c => prefix.push(c),
        }
    }
    if prefix.is_empty() || !prefix.is_ascii() {
        return None;
    }
    let low = prefix.to_ascii_lowercase();
    let mut high = low.clone().into_bytes();
    let last = high.last_mut()?;
    if *last >= 0x7f {
        return None;
    }
    *last += 1;
    Some((low, String::from_utf8(high).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: Column = Column {
        name: "name",
        kind: ColumnKind::Text,
    };
    const STATUS: Column = Column {
        name: "status",
        kind: ColumnKind::Integer,
    };

    #[test]
    fn groups_are_anded_and_their_conditions_ored_with_every_value_bound() {
        let search = Search {
            groups: vec![
                vec![
                    Condition::Compare(NAME, Comparison::Eq, Operand::Text("A'; --".into())),
                    Condition::Null {
                        column: NAME,
                        negated: false,
                    },
                ],
                vec![Condition::In {
                    column: STATUS,
                    values: vec![Operand::Int(0), Operand::Int(2)],
                    negated: true,
                }],
            ],
            sort: vec![(NAME, Direction::Desc)],
            limit: 20,
            offset: 40,
        };
        let sql = search.sql(Backend::Sqlite, "id");
        assert_eq!(
            sql.filter,
            " WHERE (lower(name) = lower($1) OR name IS NULL) AND (status NOT IN ($2, $3))"
        );
        assert_eq!(sql.order, " ORDER BY lower(name) DESC, id ASC");
        assert_eq!(sql.page, " LIMIT $4 OFFSET $5");
        assert_eq!(sql.filter_binds.len(), 3);
        assert_eq!(sql.binds[0], Operand::Text("A'; --".into()));
        assert_eq!(sql.binds[3..], [Operand::Int(20), Operand::Int(40)]);
    }

    #[test]
    fn a_like_with_a_literal_prefix_is_bounded_to_its_index_range() {
        let like = |pattern: &str| Search {
            groups: vec![vec![Condition::Like {
                column: NAME,
                pattern: pattern.into(),
                negated: false,
            }]],
            sort: Vec::new(),
            limit: 1,
            offset: 0,
        };
        let sql = like("Shop\\_A%").sql(Backend::Postgres, "id");
        assert_eq!(
            sql.filter,
            " WHERE ((lower(name) COLLATE \"C\" >= $1 AND lower(name) COLLATE \"C\" < $2 AND lower(name) LIKE lower($3) ESCAPE '\\'))"
        );
        assert_eq!(
            sql.filter_binds[..2],
            [
                Operand::Text("shop_a".into()),
                Operand::Text("shop_b".into())
            ]
        );
        assert!(like("%shop").sql(Backend::Sqlite, "id").filter_binds.len() == 1);
        assert!(like("Café%").sql(Backend::Sqlite, "id").filter_binds.len() == 1);
        assert_eq!(ascii_prefix_range("ab"), Some(("ab".into(), "ac".into())));
        assert_eq!(ascii_prefix_range("_b"), None);
    }
}
