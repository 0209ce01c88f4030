//! The Web API route table, like Magento's `webapi.xml`: for each method and path pattern, the
//! ACL resources a caller must hold.
//!
//! This module owns the table's file format, its validation and route matching; it does no I/O
//! beyond reading the files and knows nothing of HTTP servers. The server's own REST routes
//! come from the built-in table (`routes.toml` beside this file): each names the handler that
//! serves it, and the web layer registers exactly these. Operators add route tables of other
//! services (`webapi.routes_files`): those are checked by the forward-auth endpoint, and the
//! ones with an `upstream` are served by the built-in reverse proxy.
//!
//! Path patterns are written as in `webapi.xml`: literal segments, `:name` for one segment, and
//! a final `*` for any rest of the path (none included). When several routes match, the one
//! whose segments are most literal from the left wins (a literal beats `:name` beats `*`), then
//! an exact method beats `*`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::acl::{ANONYMOUS, ResourceTree, SELF};

/// The built-in table of the server's own routes.
pub const BUILTIN: &str = include_str!("routes.toml");

/// Methods a route may name (`*` is any).
const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "*",
];

/// Path prefixes the server itself serves: a proxied route may not take them.
const RESERVED: &[&str] = &[
    "/rest",
    "/oauth",
    "/admin",
    "/livez",
    "/readyz",
    "/metrics",
    "/forward-auth",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Rest,
}

/// One route of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Upper-case method, or `*`.
    pub method: String,
    /// The pattern as written.
    pub path: String,
    segments: Vec<Segment>,
    /// The pattern in actix's syntax, made once.
    pattern: String,
    /// Every one is required.
    pub resources: Vec<String>,
    /// The server's handler (built-in routes only).
    pub handler: Option<String>,
    /// Where the proxy forwards (other services' routes only).
    pub upstream: Option<url::Url>,
}

impl Route {
    /// The parameter values of a matching path, by name.
    pub fn params<'p>(&self, path: &'p str) -> Vec<(&str, &'p str)> {
        self.segments
            .iter()
            .zip(split(path))
            .filter_map(|(s, v)| match s {
                Segment::Param(name) => Some((name.as_str(), v)),
                _ => None,
            })
            .collect()
    }

    /// The pattern in actix's syntax (`{name}`, `{tail:.*}`), as logs and metrics name it.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The pattern in actix's syntax (`{name}`, `{tail:.*}`), for registering handlers.
    pub fn actix_pattern(&self) -> String {
        let mut out = String::new();
        for s in &self.segments {
            out.push('/');
            match s {
                Segment::Literal(l) => out.push_str(l),
                Segment::Param(p) => {
                    out.push('{');
                    out.push_str(p);
                    out.push('}');
                }
                Segment::Rest => out.push_str("{tail:.*}"),
            }
        }
        out
    }

    /// How literal the pattern is, segment by segment from the left (higher wins).
    pub fn specificity(&self) -> (Vec<u8>, bool) {
        let segs = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Literal(_) => 2,
                Segment::Param(_) => 1,
                Segment::Rest => 0,
            })
            .collect();
        (segs, self.method != "*")
    }

    /// Whether the pattern is all literal segments.
    pub fn is_static(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Literal(_)))
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        if self.method != "*" && !self.method.eq_ignore_ascii_case(method) {
            return false;
        }
        let mut parts = split(path);
        for seg in &self.segments {
            match seg {
                Segment::Rest => return true,
                Segment::Literal(l) => {
                    if parts.next() != Some(l.as_str()) {
                        return false;
                    }
                }
                Segment::Param(_) => {
                    if parts.next().is_none_or(str::is_empty) {
                        return false;
                    }
                }
            }
        }
        parts.next().is_none()
    }
}

/// The segments of a path, without the query, leading slash or a trailing slash.
fn split(path: &str) -> impl Iterator<Item = &str> {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let path = path.strip_prefix('/').unwrap_or(path);
    let path = path.strip_suffix('/').unwrap_or(path);
    path.split('/').filter(move |_| !path.is_empty())
}

/// A route table file that cannot be used: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}{message}", path.display(), if key.is_empty() { String::new() } else { format!("key {key}: ") })]
pub struct RouteError {
    pub path: PathBuf,
    pub key: String,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteFile {
    #[serde(default)]
    route: Vec<RouteEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteEntry {
    method: String,
    path: String,
    resources: Vec<String>,
    #[serde(default)]
    handler: Option<String>,
    #[serde(default)]
    upstream: Option<String>,
}

/// Which kind of table a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Own,
    External,
}

/// The server's own routes and those of other services.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    own: Ranked,
    external: Ranked,
}

/// Routes in the order they were declared, and the same routes in the order a lookup tries
/// them: most specific first, declaration order among equals. The first that matches is the
/// answer, found without comparing the rest.
#[derive(Debug, Clone, Default)]
struct Ranked {
    declared: Vec<Route>,
    by_rank: Vec<usize>,
}

impl Ranked {
    fn new(declared: Vec<Route>) -> Self {
        let mut by_rank: Vec<usize> = (0..declared.len()).collect();
        // Stable: among routes as specific as each other, the first declared stays first.
        by_rank.sort_by_cached_key(|&i| std::cmp::Reverse(declared[i].specificity()));
        Self { declared, by_rank }
    }

    /// The most specific route a request falls under.
    fn best(&self, method: &str, path: &str) -> Option<&Route> {
        self.by_rank
            .iter()
            .map(|&i| &self.declared[i])
            .find(|r| r.matches(method, path))
    }
}

impl RouteTable {
    /// The built-in table plus the files of other services; every file is checked against the
    /// ACL tree, and the first problem is reported with its file and key.
    pub fn load(files: &[PathBuf], tree: &ResourceTree) -> Result<Self, RouteError> {
        let own = builtin(tree)?;
        let mut external: Vec<Route> = Vec::new();
        for path in files {
            let text = std::fs::read_to_string(path).map_err(|e| RouteError {
                path: path.clone(),
                key: String::new(),
                message: format!("cannot read the file: {e}"),
            })?;
            for (i, route) in parse(path, &text, Kind::External, tree)?
                .into_iter()
                .enumerate()
            {
                if external
                    .iter()
                    .any(|r| r.method == route.method && r.segments == route.segments)
                {
                    return Err(RouteError {
                        path: path.clone(),
                        key: format!("route[{i}]"),
                        message: format!("{} {} is declared twice", route.method, route.path),
                    });
                }
                external.push(route);
            }
        }
        Ok(Self {
            own: Ranked::new(own),
            external: Ranked::new(external),
        })
    }

    /// The built-in table plus one route file's `text` (as [`RouteTable::load`] reads each
    /// file), named `name` in errors.
    pub fn with_text(name: &str, text: &str, tree: &ResourceTree) -> Result<Self, RouteError> {
        let own = builtin(tree)?;
        let external = parse(Path::new(name), text, Kind::External, tree)?;
        Ok(Self {
            own: Ranked::new(own),
            external: Ranked::new(external),
        })
    }

    /// The server's own REST routes (paths below `/rest` and `/rest/<store>`).
    pub fn own(&self) -> &[Route] {
        &self.own.declared
    }

    /// Other services' routes.
    pub fn external(&self) -> &[Route] {
        &self.external.declared
    }

    /// The route of another service that a request falls under, if any.
    pub fn find_external(&self, method: &str, path: &str) -> Option<&Route> {
        self.external.best(method, path)
    }

    /// The server's own route that a request (path below `/rest[/<store>]`) falls under.
    pub fn find_own(&self, method: &str, path: &str) -> Option<&Route> {
        self.own.best(method, path)
    }

    /// Whether one of the server's own routes has this path, with any method (another method
    /// answers 405, not 404).
    pub fn knows_own_path(&self, path: &str) -> bool {
        self.own.declared.iter().any(|r| r.matches(&r.method, path))
    }
}

/// The server's own routes, from the built-in table.
fn builtin(tree: &ResourceTree) -> Result<Vec<Route>, RouteError> {
    parse(
        Path::new("<built-in routes.toml>"),
        BUILTIN,
        Kind::Own,
        tree,
    )
}

fn parse(
    path: &Path,
    text: &str,
    kind: Kind,
    tree: &ResourceTree,
) -> Result<Vec<Route>, RouteError> {
    let err = |key: String, message: String| RouteError {
        path: path.to_owned(),
        key,
        message,
    };
    let file: RouteFile =
        crate::config::parse_toml_at_key(text).map_err(|(key, message)| err(key, message))?;
    let mut out: Vec<Route> = Vec::with_capacity(file.route.len());
    for (i, e) in file.route.into_iter().enumerate() {
        let at = |field: &str| format!("route[{i}].{field}");
        let method = e.method.trim().to_ascii_uppercase();
        if !METHODS.contains(&method.as_str()) {
            return Err(err(
                at("method"),
                format!("`{}` is not one of {}", e.method, METHODS.join(", ")),
            ));
        }
        let segments = parse_pattern(&e.path).map_err(|m| err(at("path"), m))?;
        if e.resources.is_empty() {
            return Err(err(
                at("resources"),
                "name at least one resource (`anonymous` for a public route)".into(),
            ));
        }
        for r in &e.resources {
            if r != SELF && r != ANONYMOUS && r != crate::acl::ALL && !tree.contains(r) {
                return Err(err(
                    at("resources"),
                    format!("`{r}` is not a resource of the ACL tree"),
                ));
            }
        }
        let upstream = match (&kind, e.upstream) {
            (Kind::Own, Some(_)) => {
                return Err(err(
                    at("upstream"),
                    "built-in routes have no upstream".into(),
                ));
            }
            (_, None) => None,
            (Kind::External, Some(u)) => {
                let url = url::Url::parse(&u)
                    .map_err(|x| err(at("upstream"), format!("`{u}` is not a URL: {x}")))?;
                if !matches!(url.scheme(), "http" | "https")
                    || url.host_str().is_none()
                    || url.query().is_some()
                    || url.fragment().is_some()
                {
                    return Err(err(
                        at("upstream"),
                        format!("`{u}` must be an http(s) URL without query or fragment"),
                    ));
                }
                if let Some(prefix) = RESERVED
                    .iter()
                    .find(|p| e.path == **p || e.path.starts_with(&format!("{p}/")))
                {
                    return Err(err(
                        at("path"),
                        format!(
                            "`{prefix}` is served by this server; a proxied route cannot take it"
                        ),
                    ));
                }
                Some(url)
            }
        };
        let handler = match (kind, e.handler) {
            (Kind::Own, None) => return Err(err(at("handler"), "missing handler".into())),
            (Kind::External, Some(_)) => {
                return Err(err(
                    at("handler"),
                    "routes of other services have no handler (use upstream to proxy them)".into(),
                ));
            }
            (_, h) => h,
        };
        let mut route = Route {
            method,
            path: e.path,
            segments,
            pattern: String::new(),
            resources: e.resources,
            handler,
            upstream,
        };
        route.pattern = route.actix_pattern();
        if out
            .iter()
            .any(|r| r.method == route.method && r.segments == route.segments)
        {
            return Err(err(
                format!("route[{i}]"),
                format!("{} {} is declared twice", route.method, route.path),
            ));
        }
        out.push(route);
    }
    Ok(out)
}

fn parse_pattern(p: &str) -> Result<Vec<Segment>, String> {
    if !p.starts_with('/') {
        return Err(format!("`{p}` must start with /"));
    }
    if p.contains(['?', '#', '{', '}']) || p.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{p}` may hold path segments, `:name` and a final `*` only"
        ));
    }
    let parts: Vec<&str> = split(p).collect();
    let mut out = Vec::with_capacity(parts.len());
    for (i, s) in parts.iter().enumerate() {
        out.push(if *s == "*" {
            if i + 1 != parts.len() {
                return Err(format!("`{p}`: `*` may only be the last segment"));
            }
            Segment::Rest
        } else if let Some(name) = s.strip_prefix(':') {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("`{p}`: `:{name}` is not a valid parameter name"));
            }
            Segment::Param(name.to_owned())
        } else if s.is_empty() {
            return Err(format!("`{p}` has an empty segment"));
        } else {
            Segment::Literal((*s).to_owned())
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> ResourceTree {
        ResourceTree::builtin()
    }

    fn external(text: &str) -> Result<Vec<Route>, RouteError> {
        parse(Path::new("t.toml"), text, Kind::External, &tree())
    }

    #[test]
    fn the_builtin_table_parses() {
        let t = RouteTable::load(&[], &tree()).unwrap();
        assert!(!t.own().is_empty());
        let r = t.find_own("POST", "/V1/integration/admin/token").unwrap();
        assert_eq!(r.resources, ["anonymous"]);
        let r = t.find_own("GET", "/V1/integrations/me").unwrap();
        assert_eq!(r.handler.as_deref(), Some("integrations.me"));
        let r = t.find_own("GET", "/V1/integrations/12").unwrap();
        assert_eq!(r.handler.as_deref(), Some("integrations.get"));
        assert_eq!(r.params("/V1/integrations/12"), [("id", "12")]);
    }

    #[test]
    fn most_literal_route_wins() {
        let routes = external(
            r#"
            [[route]]
            method = "*"
            path = "/shop/*"
            resources = ["Magento_Sales::sales"]
            [[route]]
            method = "GET"
            path = "/shop/orders/:id"
            resources = ["Magento_Sales::actions_view"]
            [[route]]
            method = "GET"
            path = "/shop/orders/recent"
            resources = ["anonymous"]
            [[route]]
            method = "*"
            path = "/shop/orders/:id"
            resources = ["Magento_Sales::sales_order"]
            [[route]]
            method = "GET"
            path = "/shop/:kind/summary"
            resources = ["Magento_Sales::sales"]
            [[route]]
            method = "GET"
            path = "/shop/:section/summary"
            resources = ["anonymous"]
            "#,
        )
        .unwrap();
        let t = RouteTable {
            own: Ranked::default(),
            external: Ranked::new(routes),
        };
        // Listed as declared; among equally specific routes the first declared wins.
        assert_eq!(t.external()[0].path, "/shop/*");
        assert_eq!(
            t.find_external("GET", "/shop/x/summary")
                .map(|r| r.path.as_str()),
            Some("/shop/:kind/summary")
        );
        let res = |m: &str, p: &str| t.find_external(m, p).map(|r| r.resources[0].clone());
        assert_eq!(
            res("GET", "/shop/orders/recent").as_deref(),
            Some("anonymous")
        );
        assert_eq!(
            res("GET", "/shop/orders/5").as_deref(),
            Some("Magento_Sales::actions_view")
        );
        assert_eq!(
            res("DELETE", "/shop/orders/5").as_deref(),
            Some("Magento_Sales::sales_order")
        );
        assert_eq!(
            res("GET", "/shop/orders/5?x=1").as_deref(),
            Some("Magento_Sales::actions_view")
        );
        assert_eq!(
            res("GET", "/shop/orders/5/").as_deref(),
            Some("Magento_Sales::actions_view")
        );
        assert_eq!(
            res("GET", "/shop/orders/5/items").as_deref(),
            Some("Magento_Sales::sales")
        );
        assert_eq!(res("GET", "/shop").as_deref(), Some("Magento_Sales::sales"));
        assert_eq!(res("GET", "/other"), None);
    }

    #[test]
    fn bad_tables_name_the_key() {
        let cases = [
            (
                "[[route]]\nmethod = \"FETCH\"\npath = \"/a\"\nresources = [\"anonymous\"]",
                "route[0].method",
            ),
            (
                "[[route]]\nmethod = \"GET\"\npath = \"a\"\nresources = [\"anonymous\"]",
                "route[0].path",
            ),
            (
                "[[route]]\nmethod = \"GET\"\npath = \"/a/*/b\"\nresources = [\"anonymous\"]",
                "route[0].path",
            ),
            (
                "[[route]]\nmethod = \"GET\"\npath = \"/a/:\"\nresources = [\"anonymous\"]",
                "route[0].path",
            ),
            (
                "[[route]]\nmethod = \"GET\"\npath = \"/a\"\nresources = []",
                "route[0].resources",
            ),
            (
                "[[route]]\nmethod = \"GET\"\npath = \"/a\"\nresources = [\"Nope::x\"]",
                "route[0].resources",
            ),
            (
                "[[route]]\nmethod = \"GET\"\npath = \"/a\"\nresources = [\"anonymous\"]\nupstream = \"ftp://x\"",
                "route[0].upstream",
            ),
            (
                "[[route]]\nmethod = \"GET\"\npath = \"/rest/x\"\nresources = [\"anonymous\"]\nupstream = \"http://127.0.0.1:1\"",
                "route[0].path",
            ),
            (
                "[[route]]\nmethod = \"GET\"\npath = \"/a\"\nresources = [\"anonymous\"]\nhandler = \"x\"",
                "route[0].handler",
            ),
            (
                "[[route]]\nmethod = \"GET\"\npath = \"/a\"\nresources = [\"anonymous\"]\n[[route]]\nmethod = \"get\"\npath = \"/a/\"\nresources = [\"self\"]",
                "route[1]",
            ),
            (
                "[[route]]\nmethod = \"GET\"\npath = \"/a\"",
                "route[0].resources",
            ),
            (
                "[[route]]\nmethod = \"GET\"\npath = \"/a\"\nresources = [\"anonymous\"]\nextra = 1",
                "route[0]",
            ),
        ];
        for (text, key) in cases {
            let e = external(text).unwrap_err();
            assert!(e.key.starts_with(key), "{text}: {e}");
        }
        // Forward-auth-only routes may use any path.
        assert!(
            external(
                "[[route]]\nmethod = \"GET\"\npath = \"/rest/x\"\nresources = [\"anonymous\"]"
            )
            .is_ok()
        );
    }

    #[test]
    fn actix_patterns() {
        let r = &external(
            "[[route]]\nmethod = \"GET\"\npath = \"/a/:id/*\"\nresources = [\"anonymous\"]",
        )
        .unwrap()[0];
        assert_eq!(r.actix_pattern(), "/a/{id}/{tail:.*}");
    }
}
