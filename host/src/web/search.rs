//! Magento's search criteria as a query string: `searchCriteria[filter_groups][0][filters][0][field]`,
//! `…[value]`, `…[condition_type]`, `searchCriteria[sort_orders][0][field]`, `…[direction]`,
//! `searchCriteria[pageSize]` and `searchCriteria[currentPage]`, in camelCase or snake_case as
//! Magento's Web API reads both, read into [`SearchCriteria`]. Only translation: what the
//! criteria may name is the services' to check.

use std::collections::BTreeMap;

use crate::services::search::{Filter, FilterGroup, SearchCriteria, SortOrder, invalid_value};
use crate::services::{Phrase, ServiceError};

/// One filter's parts as the query gave them.
#[derive(Default)]
struct Parts {
    field: Option<String>,
    value: Option<String>,
    condition_type: Option<String>,
}

/// The search criteria of a query string's `searchCriteria[…]` parameters (others are left to
/// the caller). Indices order the groups, filters and sorts; they need not be contiguous.
pub fn criteria_from_query(query: &str) -> Result<SearchCriteria, ServiceError> {
    let mut groups: BTreeMap<u32, BTreeMap<u32, Parts>> = BTreeMap::new();
    let mut sorts: BTreeMap<u32, (Option<String>, Option<String>)> = BTreeMap::new();
    let mut criteria = SearchCriteria::default();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let Some(rest) = key.strip_prefix("searchCriteria") else {
            continue;
        };
        let unknown = || unknown_parameter(&key);
        let segments = segments(rest).ok_or_else(unknown)?;
        let names: Vec<String> = segments.iter().map(|s| normalized(s)).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let index = |i: usize| segments[i].parse::<u32>().map_err(|_| unknown());
        let value = value.into_owned();
        match names.as_slice() {
            ["filter_groups", _, "filters", _, part] => {
                let filter = groups
                    .entry(index(1)?)
                    .or_default()
                    .entry(index(3)?)
                    .or_default();
                match *part {
                    "field" => filter.field = Some(value),
                    "value" => filter.value = Some(value),
                    "condition_type" => filter.condition_type = Some(value),
                    _ => return Err(unknown()),
                }
            }
            ["sort_orders", _, part] => {
                let sort = sorts.entry(index(1)?).or_default();
                match *part {
                    "field" => sort.0 = Some(value),
                    "direction" => sort.1 = Some(value),
                    _ => return Err(unknown()),
                }
            }
            ["page_size"] => {
                criteria.page_size = Some(
                    value
                        .trim()
                        .parse()
                        .map_err(|_| invalid_value("searchCriteria[pageSize]", &value))?,
                );
            }
            ["current_page"] => {
                criteria.current_page = Some(
                    value
                        .trim()
                        .parse()
                        .map_err(|_| invalid_value("searchCriteria[currentPage]", &value))?,
                );
            }
            _ => return Err(unknown()),
        }
    }
    for (g, (_, filters)) in groups.into_iter().enumerate() {
        let mut group = FilterGroup::default();
        for (f, (_, parts)) in filters.into_iter().enumerate() {
            let field = parts.field.ok_or_else(|| {
                required(&format!(
                    "searchCriteria[filter_groups][{g}][filters][{f}][field]"
                ))
            })?;
            group.filters.push(Filter {
                field,
                value: parts.value.unwrap_or_default(),
                condition_type: parts.condition_type.unwrap_or_else(|| "eq".to_owned()),
            });
        }
        criteria.filter_groups.push(group);
    }
    for (s, (_, (field, direction))) in sorts.into_iter().enumerate() {
        criteria.sort_orders.push(SortOrder {
            field: field
                .ok_or_else(|| required(&format!("searchCriteria[sort_orders][{s}][field]")))?,
            direction: direction.unwrap_or_else(|| "ASC".to_owned()),
        });
    }
    Ok(criteria)
}

/// `[a][0][b]` as `["a", "0", "b"]`; `None` unless the text is only bracketed segments.
fn segments(mut rest: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let end = inner.find(']')?;
        out.push(&inner[..end]);
        rest = &inner[end + 1..];
    }
    (!out.is_empty()).then_some(out)
}

/// A name in snake_case (`filterGroups` → `filter_groups`); indices stay as they are.
fn normalized(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len() + 2);
    for c in segment.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn required(parameter: &str) -> ServiceError {
    ServiceError::Input(Phrase::named(
        "\"%fieldName\" is required. Enter and try again.",
        vec![("fieldName", parameter.to_owned())],
    ))
}

fn unknown_parameter(parameter: &str) -> ServiceError {
    ServiceError::Input(Phrase::named(
        "\"%parameter\" is not a search criteria parameter. Use searchCriteria[filter_groups][i][filters][j][field], [value] and [condition_type], searchCriteria[sort_orders][i][field] and [direction], searchCriteria[pageSize] and searchCriteria[currentPage].",
        vec![("parameter", parameter.to_owned())],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(e: ServiceError) -> String {
        match e {
            ServiceError::Input(p) => p.render(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn camel_and_snake_case_names_read_alike_in_index_order() {
        let criteria = criteria_from_query(
            "searchCriteria%5BfilterGroups%5D%5B3%5D%5Bfilters%5D%5B0%5D%5Bfield%5D=status\
             &searchCriteria[filter_groups][3][filters][0][value]=1\
             &searchCriteria[filter_groups][1][filters][0][field]=name\
             &searchCriteria[filter_groups][1][filters][0][condition_type]=like\
             &searchCriteria[filter_groups][1][filters][0][value]=Shop%25\
             &searchCriteria[sortOrders][0][field]=created_at\
             &searchCriteria[sortOrders][0][direction]=DESC\
             &searchCriteria[pageSize]=5&searchCriteria[current_page]=2&name=ignored",
        )
        .unwrap();
        assert_eq!(criteria.filter_groups.len(), 2);
        assert_eq!(criteria.filter_groups[0].filters[0].value, "Shop%");
        assert_eq!(criteria.filter_groups[1].filters[0].condition_type, "eq");
        assert_eq!(criteria.sort_orders[0].direction, "DESC");
        assert_eq!(
            (criteria.page_size, criteria.current_page),
            (Some(5), Some(2))
        );
    }

    #[test]
    fn unknown_names_missing_fields_and_bad_numbers_are_refused() {
        let refused = |q: &str| message(criteria_from_query(q).unwrap_err());
        assert!(refused("searchCriteria[filterGroup][0][filters][0][field]=name").starts_with(
            "\"searchCriteria[filterGroup][0][filters][0][field]\" is not a search criteria parameter."
        ));
        assert!(refused("searchCriteria=1").contains("is not a search criteria parameter"));
        assert!(refused("searchCriteria[sortOrders][x][field]=name").contains("is not a search"));
        assert_eq!(
            refused("searchCriteria[filter_groups][0][filters][0][value]=1"),
            "\"searchCriteria[filter_groups][0][filters][0][field]\" is required. Enter and try again."
        );
        assert_eq!(
            refused("searchCriteria[pageSize]=ten"),
            "Invalid value of \"ten\" provided for the searchCriteria[pageSize] field."
        );
    }
}
