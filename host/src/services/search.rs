//! Magento's search criteria (`SearchCriteriaInterface`): filter groups, sort orders and a
//! page, as a client asks for a list, checked against the fields the list offers and turned
//! into a search the store runs in the database; and the search-result shape the answer keeps
//! (`items`, the criteria echoed, `total_count`).
//!
//! Filters within a group are ORed and groups are ANDed, as in Magento. Each list names its
//! fields with a [`Field`] table; this module owns the condition types, how values read, the
//! page bounds (`[webapi] default_page_size` and `maximum_page_size`) and the refusals, in
//! Magento's message shape.

use std::str::FromStr;

use serde::Serialize;
use utoipa::ToSchema;

use super::{Phrase, ServiceError};
use crate::domain::{IntegrationStatus, SetupType};
use crate::store::integration_columns;
use crate::store::search::{Column, ColumnKind, Comparison, Condition, Direction, Operand, Search};

/// What a client asks a list for; echoed in the answer with the page it got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct SearchCriteria {
    /// Every group must match; one filter of a group is enough.
    pub filter_groups: Vec<FilterGroup>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sort_orders: Vec<SortOrder>,
    /// Items per page (the server's default when not asked for).
    pub page_size: Option<u32>,
    /// The page, from 1.
    pub current_page: Option<u32>,
}

/// Filters of which one must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct FilterGroup {
    pub filters: Vec<Filter>,
}

/// One condition: `field`, `condition_type` (`eq` when not given) and `value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Filter {
    pub field: String,
    pub value: String,
    pub condition_type: String,
}

/// A sort: `field` and `direction` (`ASC` or `DESC`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SortOrder {
    pub field: String,
    pub direction: String,
}

/// A page of what a search found, in Magento's search-result shape.
#[derive(Debug)]
pub struct SearchResults<T> {
    pub items: Vec<T>,
    /// The criteria as applied (with the page size and page used).
    pub search_criteria: SearchCriteria,
    /// How many items match, over every page.
    pub total_count: u64,
}

/// The page sizes of lists: the one used when a client asks for none, and the largest allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSizes {
    pub default: u32,
    pub maximum: u32,
}

/// A field a list can be filtered and sorted by: its name in requests, its column, and how
/// its values read.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub column: Column,
    pub value: ValueKind,
}

/// How a filter's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Integer,
    Text,
    /// 0, 1, 2 or `inactive`, `active`, `reset`.
    Status,
    /// 0, 1 or `manual`, `config`.
    SetupType,
    /// `2026-12-03 08:00:00` (Magento's form, UTC), RFC 3339, or a date (its midnight, UTC).
    Time,
}

/// The fields integrations are searched and sorted by, as Magento's search criteria name them.
pub const INTEGRATION_FIELDS: &[Field] = &[
    Field {
        name: "id",
        column: integration_columns::ID,
        value: ValueKind::Integer,
    },
    // The column's name in Magento's `integration` table.
    Field {
        name: "integration_id",
        column: integration_columns::ID,
        value: ValueKind::Integer,
    },
    Field {
        name: "name",
        column: integration_columns::NAME,
        value: ValueKind::Text,
    },
    Field {
        name: "email",
        column: integration_columns::EMAIL,
        value: ValueKind::Text,
    },
    Field {
        name: "status",
        column: integration_columns::STATUS,
        value: ValueKind::Status,
    },
    Field {
        name: "setup_type",
        column: integration_columns::SETUP_TYPE,
        value: ValueKind::SetupType,
    },
    Field {
        name: "created_at",
        column: integration_columns::CREATED_AT,
        value: ValueKind::Time,
    },
    Field {
        name: "updated_at",
        column: integration_columns::UPDATED_AT,
        value: ValueKind::Time,
    },
];

/// Magento's condition types this server supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionType {
    Eq,
    Neq,
    Like,
    Nlike,
    In,
    Nin,
    Gt,
    Lt,
    Gteq,
    Lteq,
    Null,
    Notnull,
}

impl ConditionType {
    /// Every condition type's name, as refusals list them.
    pub const NAMES: &'static str =
        "eq, neq, like, nlike, in, nin, gt, lt, gteq (from, moreq), lteq (to), null, notnull";
}

impl FromStr for ConditionType {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "eq" => Self::Eq,
            "neq" => Self::Neq,
            "like" => Self::Like,
            "nlike" => Self::Nlike,
            "in" => Self::In,
            "nin" => Self::Nin,
            "gt" => Self::Gt,
            "lt" => Self::Lt,
            // Magento's `from`, `to` and `moreq` are these comparisons under other names.
            "gteq" | "from" | "moreq" => Self::Gteq,
            "lteq" | "to" => Self::Lteq,
            "null" => Self::Null,
            "notnull" => Self::Notnull,
            _ => return Err(()),
        })
    }
}

/// The most values the filters of one search may hold (an `in` list counts each of its).
const MAX_VALUES: usize = 1000;
/// The most sort orders of one search.
const MAX_SORT_ORDERS: usize = 10;

/// Magento's refusal of a value (`InputException::invalidFieldValue`), naming the query
/// parameter that held it.
pub fn invalid_value(parameter: &str, value: &str) -> ServiceError {
    ServiceError::Input(Phrase::named(
        "Invalid value of \"%value\" provided for the %fieldName field.",
        vec![
            ("value", value.to_owned()),
            ("fieldName", parameter.to_owned()),
        ],
    ))
}

/// A `like` pattern for values containing `text`, its own `%`, `_` and `\` escaped.
///
/// ```
/// use integration_host::services::search::like_containing;
/// assert_eq!(like_containing("100%_a\\"), "%100\\%\\_a\\\\%");
/// ```
pub fn like_containing(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl SearchCriteria {
    /// The search these criteria ask for over `fields`, sorted by `default_sort` when they
    /// name no order, and the criteria as applied (the page filled in).
    pub fn search(
        &self,
        fields: &[Field],
        default_sort: &[(Column, Direction)],
        sizes: PageSizes,
    ) -> Result<(Search, SearchCriteria), ServiceError> {
        let mut groups = Vec::with_capacity(self.filter_groups.len());
        for (g, group) in self.filter_groups.iter().enumerate() {
            let mut conditions = Vec::with_capacity(group.filters.len());
            for (f, filter) in group.filters.iter().enumerate() {
                let at = format!("searchCriteria[filter_groups][{g}][filters][{f}]");
                conditions.push(condition(fields, filter, &at)?);
            }
            groups.push(conditions);
        }
        let values: usize = groups
            .iter()
            .flatten()
            .map(|c| match c {
                Condition::In { values, .. } => values.len(),
                _ => 1,
            })
            .sum();
        if values > MAX_VALUES || self.sort_orders.len() > MAX_SORT_ORDERS {
            return Err(ServiceError::Input(Phrase::named(
                "The search criteria are too large: at most %values values in filters and %sorts sort orders.",
                vec![
                    ("values", MAX_VALUES.to_string()),
                    ("sorts", MAX_SORT_ORDERS.to_string()),
                ],
            )));
        }
        let mut sort = Vec::with_capacity(self.sort_orders.len());
        for (s, order) in self.sort_orders.iter().enumerate() {
            let field = field(fields, &order.field)?;
            let direction = match order.direction.to_ascii_uppercase().as_str() {
                "ASC" => Direction::Asc,
                "DESC" => Direction::Desc,
                _ => {
                    return Err(invalid_value(
                        &format!("searchCriteria[sort_orders][{s}][direction]"),
                        &order.direction,
                    ));
                }
            };
            sort.push((field.column, direction));
        }
        if sort.is_empty() {
            sort = default_sort.to_vec();
        }
        let page_size = match self.page_size {
            None => sizes.default.min(sizes.maximum),
            Some(0) => return Err(invalid_value("searchCriteria[pageSize]", "0")),
            Some(n) if n > sizes.maximum => {
                return Err(ServiceError::Input(Phrase::named(
                    "Maximum SearchCriteria pageSize is %max",
                    vec![("max", sizes.maximum.to_string())],
                )));
            }
            Some(n) => n,
        };
        let current_page = match self.current_page {
            None => 1,
            Some(0) => return Err(invalid_value("searchCriteria[currentPage]", "0")),
            Some(n) => n,
        };
        let applied = SearchCriteria {
            page_size: Some(page_size),
            current_page: Some(current_page),
            ..self.clone()
        };
        Ok((
            Search {
                groups,
                sort,
                limit: page_size,
                offset: u64::from(current_page - 1) * u64::from(page_size),
            },
            applied,
        ))
    }
}

/// The field named `name` (case-insensitively), or Magento-shaped refusal listing the fields.
fn field<'a>(fields: &'a [Field], name: &str) -> Result<&'a Field, ServiceError> {
    fields
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            ServiceError::Input(Phrase::named(
                "The field \"%field\" can't be used to filter or sort. Use one of: %fields.",
                vec![
                    ("field", name.to_owned()),
                    (
                        "fields",
                        fields.iter().map(|f| f.name).collect::<Vec<_>>().join(", "),
                    ),
                ],
            ))
        })
}

fn condition(fields: &[Field], filter: &Filter, at: &str) -> Result<Condition, ServiceError> {
    let field = field(fields, &filter.field)?;
    let kind: ConditionType = filter.condition_type.parse().map_err(|()| {
        ServiceError::Input(Phrase::named(
            "The condition type \"%conditionType\" is not supported. Use one of: %conditionTypes.",
            vec![
                ("conditionType", filter.condition_type.clone()),
                ("conditionTypes", ConditionType::NAMES.to_owned()),
            ],
        ))
    })?;
    let column = field.column;
    let one = || operand(field, &filter.value, &format!("{at}[value]"));
    let compare = |op| Ok(Condition::Compare(column, op, one()?));
    match kind {
        ConditionType::Eq => compare(Comparison::Eq),
        ConditionType::Neq => compare(Comparison::Neq),
        ConditionType::Gt => compare(Comparison::Gt),
        ConditionType::Lt => compare(Comparison::Lt),
        ConditionType::Gteq => compare(Comparison::Gteq),
        ConditionType::Lteq => compare(Comparison::Lteq),
        ConditionType::Like | ConditionType::Nlike => {
            if column.kind != ColumnKind::Text {
                return Err(ServiceError::Input(Phrase::named(
                    "The condition type \"%conditionType\" can't be used with the field \"%field\".",
                    vec![
                        ("conditionType", filter.condition_type.clone()),
                        ("field", field.name.to_owned()),
                    ],
                )));
            }
            Ok(Condition::Like {
                column,
                pattern: filter.value.clone(),
                negated: kind == ConditionType::Nlike,
            })
        }
        // Magento's `in` takes a comma-separated list.
        ConditionType::In | ConditionType::Nin => Ok(Condition::In {
            column,
            values: filter
                .value
                .split(',')
                .map(|v| operand(field, v.trim(), &format!("{at}[value]")))
                .collect::<Result<_, _>>()?,
            negated: kind == ConditionType::Nin,
        }),
        ConditionType::Null | ConditionType::Notnull => Ok(Condition::Null {
            column,
            negated: kind == ConditionType::Notnull,
        }),
    }
}

/// A filter's value as `field` reads it.
fn operand(field: &Field, value: &str, parameter: &str) -> Result<Operand, ServiceError> {
    let bad = || invalid_value(parameter, value);
    Ok(match field.value {
        ValueKind::Text => Operand::Text(value.to_owned()),
        ValueKind::Integer => Operand::Int(value.trim().parse().map_err(|_| bad())?),
        ValueKind::Status => Operand::Int(
            match value.trim().parse::<i64>() {
                Ok(code) => IntegrationStatus::from_code(code),
                Err(_) => IntegrationStatus::ALL
                    .into_iter()
                    .find(|s| s.label().eq_ignore_ascii_case(value.trim())),
            }
            .ok_or_else(bad)?
            .code(),
        ),
        ValueKind::SetupType => Operand::Int(
            match value.trim().to_ascii_lowercase().as_str() {
                "0" | "manual" => SetupType::Manual,
                "1" | "config" => SetupType::Config,
                _ => return Err(bad()),
            }
            .code(),
        ),
        ValueKind::Time => Operand::Int(crate::clock::parse_time(value).ok_or_else(bad)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[Field] = &[
        Field {
            name: "name",
            column: Column {
                name: "name",
                kind: ColumnKind::Text,
            },
            value: ValueKind::Text,
        },
        Field {
            name: "status",
            column: Column {
                name: "status",
                kind: ColumnKind::Integer,
            },
            value: ValueKind::Status,
        },
    ];
    const SIZES: PageSizes = PageSizes {
        default: 20,
        maximum: 300,
    };

    fn filter(field: &str, condition_type: &str, value: &str) -> Filter {
        Filter {
            field: field.into(),
            value: value.into(),
            condition_type: condition_type.into(),
        }
    }

    fn message(e: ServiceError) -> String {
        match e {
            ServiceError::Input(p) => p.render(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn criteria_become_a_search_with_the_page_applied() {
        let criteria = SearchCriteria {
            filter_groups: vec![FilterGroup {
                filters: vec![filter("status", "in", "active, 2")],
            }],
            current_page: Some(3),
            ..Default::default()
        };
        let (search, applied) = criteria.search(FIELDS, &[], SIZES).unwrap();
        assert_eq!(
            search.groups[0][0],
            Condition::In {
                column: FIELDS[1].column,
                values: vec![Operand::Int(1), Operand::Int(2)],
                negated: false
            }
        );
        assert_eq!((search.limit, search.offset), (20, 40));
        assert_eq!(
            (applied.page_size, applied.current_page),
            (Some(20), Some(3))
        );
    }

    #[test]
    fn bad_criteria_are_refused_in_words_that_name_the_parameter() {
        let refused =
            |criteria: SearchCriteria| message(criteria.search(FIELDS, &[], SIZES).unwrap_err());
        let with = |f: Filter| SearchCriteria {
            filter_groups: vec![FilterGroup { filters: vec![f] }],
            ..Default::default()
        };
        assert_eq!(
            refused(with(filter("secret", "eq", "x"))),
            "The field \"secret\" can't be used to filter or sort. Use one of: name, status."
        );
        assert!(
            refused(with(filter("name", "finset", "x")))
                .starts_with("The condition type \"finset\" is not supported.")
        );
        assert_eq!(
            refused(with(filter("status", "like", "1%"))),
            "The condition type \"like\" can't be used with the field \"status\"."
        );
        assert_eq!(
            refused(with(filter("status", "eq", "7"))),
            "Invalid value of \"7\" provided for the searchCriteria[filter_groups][0][filters][0][value] field."
        );
        assert_eq!(
            refused(SearchCriteria {
                page_size: Some(301),
                ..Default::default()
            }),
            "Maximum SearchCriteria pageSize is 300"
        );
        assert_eq!(
            refused(SearchCriteria {
                sort_orders: vec![SortOrder {
                    field: "name".into(),
                    direction: "up".into()
                }],
                ..Default::default()
            }),
            "Invalid value of \"up\" provided for the searchCriteria[sort_orders][0][direction] field."
        );
    }
}
