//! The integrations grid: a page of integrations searched by name, filtered by status and type,
//! sorted by a column, its state in the URL (`?name=shop&status=1&type=config&sort=created_at&
//! dir=desc&page=2&limit=50`), so that a link shares it and the back button returns to it. The
//! search runs in the database through the same service as the REST list.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::common::*;
use crate::domain::{IntegrationStatus, SetupType};
use crate::services::search::{Filter, FilterGroup, SearchCriteria, SortOrder, like_containing};
use crate::web::AppState;

pub(super) struct Row {
    id: i64,
    name: String,
    status: &'static str,
    setup: &'static str,
    created: String,
    active: bool,
    insecure: bool,
    config: bool,
}

/// A choice of a filter's `<select>`.
pub(super) struct Choice {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

/// A column heading: a link that sorts by it (the other way when it already does), and its
/// `aria-sort`.
pub(super) struct Heading {
    label: &'static str,
    href: String,
    sort: &'static str,
}

#[derive(Template)]
#[template(path = "admin/grid.html")]
pub(super) struct Grid {
    page: Page,
    rows: Vec<Row>,
    any_insecure: bool,
    reset_names: Vec<String>,
    name: String,
    statuses: Vec<Choice>,
    types: Vec<Choice>,
    limits: Vec<Choice>,
    sort: &'static str,
    dir: &'static str,
    headings: Vec<Heading>,
    total: u64,
    current: u32,
    pages: u64,
    previous: Option<String>,
    next: Option<String>,
    filtered: bool,
}

pub(super) fn status_label(s: IntegrationStatus) -> &'static str {
    match s {
        IntegrationStatus::Inactive => "Inactive",
        IntegrationStatus::Active => "Active",
        IntegrationStatus::Reset => "Reset",
    }
}

/// The columns the grid sorts by: the URL's name and its heading.
const SORTS: &[(&str, &str)] = &[
    ("name", "Name"),
    ("status", "Status"),
    ("setup_type", "Type"),
    ("created_at", "Created"),
];
/// Page sizes offered.
const LIMITS: &[(u32, &str)] = &[(20, "20"), (50, "50"), (100, "100"), (200, "200")];

/// The grid's state as its URL holds it; what does not read falls back to the default.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GridQuery {
    name: String,
    status: Option<IntegrationStatus>,
    setup: Option<SetupType>,
    sort: &'static str,
    desc: bool,
    page: u32,
    limit: u32,
}

impl GridQuery {
    fn parse(query: &str, maximum: u32) -> Self {
        let mut q = GridQuery {
            name: String::new(),
            status: None,
            setup: None,
            sort: "name",
            desc: false,
            page: 1,
            limit: 20,
        };
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "name" => q.name = v.trim().to_owned(),
                "status" => q.status = v.parse::<i64>().ok().and_then(IntegrationStatus::from_code),
                "type" => {
                    q.setup = match v.as_ref() {
                        "manual" => Some(SetupType::Manual),
                        "config" => Some(SetupType::Config),
                        _ => None,
                    }
                }
                "sort" => {
                    if let Some((s, _)) = SORTS.iter().find(|(s, _)| *s == v.as_ref()) {
                        q.sort = s;
                    }
                }
                "dir" => q.desc = v.eq_ignore_ascii_case("desc"),
                "page" => q.page = v.parse().ok().filter(|p| *p >= 1).unwrap_or(1),
                "limit" => {
                    q.limit = v
                        .parse()
                        .ok()
                        .filter(|l| LIMITS.iter().any(|(n, _)| n == l) && *l <= maximum)
                        .unwrap_or(20)
                }
                _ => {}
            }
        }
        q.limit = q.limit.min(maximum);
        q
    }

    /// The grid's URL with this state (defaults left out).
    fn href(&self) -> String {
        let mut url = form_urlencoded::Serializer::new(String::new());
        if !self.name.is_empty() {
            url.append_pair("name", &self.name);
        }
        if let Some(s) = self.status {
            url.append_pair("status", &s.code().to_string());
        }
        if let Some(t) = self.setup {
            url.append_pair("type", t.as_str());
        }
        if self.sort != "name" || self.desc {
            url.append_pair("sort", self.sort);
            url.append_pair("dir", if self.desc { "desc" } else { "asc" });
        }
        if self.limit != 20 {
            url.append_pair("limit", &self.limit.to_string());
        }
        if self.page > 1 {
            url.append_pair("page", &self.page.to_string());
        }
        let query = url.finish();
        if query.is_empty() {
            "/admin/integration/".to_owned()
        } else {
            format!("/admin/integration/?{query}")
        }
    }

    fn criteria(&self) -> SearchCriteria {
        let mut groups = Vec::new();
        let mut group = |field: &str, value: String, condition_type: &str| {
            groups.push(FilterGroup {
                filters: vec![Filter {
                    field: field.into(),
                    value,
                    condition_type: condition_type.into(),
                }],
            })
        };
        if !self.name.is_empty() {
            group("name", like_containing(&self.name), "like");
        }
        if let Some(s) = self.status {
            group("status", s.code().to_string(), "eq");
        }
        if let Some(t) = self.setup {
            group("setup_type", t.as_str().to_owned(), "eq");
        }
        SearchCriteria {
            filter_groups: groups,
            sort_orders: vec![SortOrder {
                field: self.sort.into(),
                direction: if self.desc { "DESC" } else { "ASC" }.into(),
            }],
            page_size: Some(self.limit),
            current_page: Some(self.page),
        }
    }
}

pub(super) async fn grid(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let session = or_answer!(signed_in(&req, &state, INTEGRATIONS).await);
    let q = GridQuery::parse(
        req.query_string(),
        state.settings.webapi.maximum_page_size.get(),
    );
    let found = or_answer!(
        state
            .integrations
            .search(&q.criteria())
            .await
            .map_err(|e| failure(&e))
    );
    // Config integrations a changed definition reset, wherever they are in the list.
    let reset = SearchCriteria {
        filter_groups: vec![
            FilterGroup {
                filters: vec![Filter {
                    field: "setup_type".into(),
                    value: "config".into(),
                    condition_type: "eq".into(),
                }],
            },
            FilterGroup {
                filters: vec![Filter {
                    field: "status".into(),
                    value: IntegrationStatus::Reset.code().to_string(),
                    condition_type: "eq".into(),
                }],
            },
        ],
        page_size: Some(state.settings.webapi.maximum_page_size.get()),
        ..Default::default()
    };
    let reset_names = or_answer!(
        state
            .integrations
            .search(&reset)
            .await
            .map_err(|e| failure(&e))
    )
    .items
    .into_iter()
    .map(|(i, _)| i.name)
    .collect();
    let rows: Vec<Row> = found
        .items
        .iter()
        .map(|(i, _)| Row {
            id: i.id,
            name: i.name.clone(),
            status: status_label(i.status),
            setup: i.setup_type.as_str(),
            created: crate::clock::iso8601(i.created_at)
                .replace('T', " ")
                .trim_end_matches('Z')
                .to_owned(),
            active: i.status == IntegrationStatus::Active,
            insecure: insecure(i),
            config: i.is_config(),
        })
        .collect();
    let pages = found.total_count.div_ceil(u64::from(q.limit)).max(1);
    let at = |page: u32| GridQuery { page, ..q.clone() }.href();
    let choice = |value: &'static str, label: &'static str, selected: bool| Choice {
        value,
        label,
        selected,
    };
    let t = Grid {
        page: page(&req, &state, &session, "integrations"),
        any_insecure: rows.iter().any(|r| r.insecure),
        reset_names,
        rows,
        name: q.name.clone(),
        statuses: std::iter::once(choice("", "Any", q.status.is_none()))
            .chain(IntegrationStatus::ALL.into_iter().map(|s| {
                choice(
                    match s {
                        IntegrationStatus::Inactive => "0",
                        IntegrationStatus::Active => "1",
                        IntegrationStatus::Reset => "2",
                    },
                    status_label(s),
                    q.status == Some(s),
                )
            }))
            .collect(),
        types: vec![
            choice("", "Any", q.setup.is_none()),
            choice("manual", "Manual", q.setup == Some(SetupType::Manual)),
            choice("config", "Config", q.setup == Some(SetupType::Config)),
        ],
        limits: LIMITS
            .iter()
            .filter(|(n, _)| *n <= state.settings.webapi.maximum_page_size.get())
            .map(|(n, label)| choice(label, label, *n == q.limit))
            .collect(),
        sort: q.sort,
        dir: if q.desc { "desc" } else { "asc" },
        headings: SORTS
            .iter()
            .map(|(field, label)| {
                let sorted = q.sort == *field;
                Heading {
                    label,
                    href: GridQuery {
                        sort: field,
                        desc: sorted && !q.desc,
                        page: 1,
                        ..q.clone()
                    }
                    .href(),
                    sort: match (sorted, q.desc) {
                        (false, _) => "none",
                        (true, false) => "ascending",
                        (true, true) => "descending",
                    },
                }
            })
            .collect(),
        total: found.total_count,
        current: q.page,
        pages,
        previous: (q.page > 1).then(|| at(q.page - 1)),
        next: (u64::from(q.page) < pages).then(|| at(q.page + 1)),
        filtered: !q.name.is_empty() || q.status.is_some() || q.setup.is_some(),
    };
    show(&req, &state, &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_holds_the_state_and_what_does_not_read_falls_back() {
        let q = GridQuery::parse(
            "name=Shop+%25&status=1&type=config&sort=created_at&dir=desc&page=3&limit=50",
            300,
        );
        assert_eq!(q.name, "Shop %");
        assert_eq!(
            (q.status, q.setup, q.sort, q.desc, q.page, q.limit),
            (
                Some(IntegrationStatus::Active),
                Some(SetupType::Config),
                "created_at",
                true,
                3,
                50
            )
        );
        assert_eq!(GridQuery::parse(&q.href()[20..], 300), q);
        assert_eq!(q.criteria().filter_groups[0].filters[0].value, "%Shop \\%%");
        let fallback = GridQuery::parse("status=9&type=x&sort=secret&page=0&limit=7", 300);
        assert_eq!(fallback, GridQuery::parse("", 300));
        assert_eq!(fallback.href(), "/admin/integration/");
        assert_eq!(GridQuery::parse("limit=200", 100).limit, 20);
    }
}
