//! Entry points of the fuzz targets in `fuzz/`: each takes arbitrary bytes and must never
//! panic, whatever they hold.
//!
//! They live in the library so that the stable test suite runs them too, over the seed corpus
//! in `fuzz/corpus/` and over random inputs, while `scripts/fuzz` runs them under AFL++
//! (`cargo afl`, on the stable toolchain). Covered: the OAuth parameter collection and signature
//! base string (with a sign-then-verify invariant), every TOML file the server reads (the
//! configuration, integration definitions, route tables, the ACL resource tree and plugin
//! manifests), Magento's search criteria of a list's query string, and the plugin boundary: whatever a plugin answers, in any of the API's types,
//! goes through the host's checks and conversions.

use std::path::Path;

/// Splits `data` into up to `n` parts at newlines (the last part keeps the rest).
fn parts(data: &[u8], n: usize) -> Vec<&[u8]> {
    data.splitn(n, |b| *b == b'\n').collect()
}

/// An HTTP request's OAuth inputs: `header \n path-and-query \n content-type \n body`.
/// Whatever is collected must sign and verify.
pub fn oauth_request(data: &[u8]) {
    let p = parts(data, 4);
    let header = p.first().and_then(|h| std::str::from_utf8(h).ok());
    let tail = p
        .get(1)
        .and_then(|t| std::str::from_utf8(t).ok())
        .unwrap_or("/");
    let content_type = p.get(2).and_then(|c| std::str::from_utf8(c).ok());
    let body = p.get(3).copied().unwrap_or_default();
    if let Some(h) = header {
        let _ = crate::oauth::parse_authorization(h);
    }
    let Some(url) = crate::oauth::SignedUrl::parse(&format!("http://example.com{tail}")) else {
        return;
    };
    let Ok(collected) = crate::oauth::collect(&url, header, content_type, body) else {
        return;
    };
    let base = crate::oauth::base_string("POST", &url, &collected.signed);
    for method in [
        crate::oauth::SignatureMethod::HmacSha256,
        crate::oauth::SignatureMethod::HmacSha1,
    ] {
        let signature = crate::oauth::sign(method, "consumer secret", "token secret", &base);
        assert!(crate::oauth::verify(
            method,
            "consumer secret",
            "token secret",
            &base,
            &signature
        ));
    }
}

/// A configuration file.
pub fn config_file(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::config::parse_toml_at_key::<crate::config::Settings>(text);
    }
}

/// An integration definition file.
pub fn definition_file(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let tree = crate::acl::ResourceTree::builtin();
        let check = |r: &str| tree.grant([r]).map(|_| ());
        let _ = crate::declarative::parse_file(Path::new("fuzz.toml"), text, &check);
    }
}

/// A plugin manifest (`plugin.toml`), the text a plugin author hands the host.
pub fn plugin_manifest(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let mut settings = crate::config::PluginSettings::default();
        settings.grants.insert(
            "granted".into(),
            crate::config::PluginGrant {
                clock: true,
                key_value_quota_kib: Some(4),
                ..Default::default()
            },
        );
        if let Ok(m) = crate::plugins::manifest::parse(Path::new("fuzz"), text, &settings) {
            assert!(
                m.roles.windows(2).all(|w| w[0] < w[1]),
                "roles sorted, each once"
            );
            assert!(m.limits.memory_mib <= settings.max_memory_mib);
            assert!(serde_json::from_str::<serde_json::Value>(&m.config_json).is_ok());
        }
    }
}

/// A route table file of another service, then a request line (`METHOD /path`) to match
/// against it: a route that matches a path yields its parameters.
pub fn route_table(data: &[u8]) {
    let p = parts(data, 2);
    let Ok(text) = std::str::from_utf8(p[0]) else {
        return;
    };
    let tree = crate::acl::ResourceTree::builtin();
    let Ok(table) = crate::webapi::RouteTable::with_text("fuzz.toml", text, &tree) else {
        return;
    };
    let line = p.get(1).and_then(|l| std::str::from_utf8(l).ok());
    let (method, path) = line.and_then(|l| l.split_once(' ')).unwrap_or(("GET", "/"));
    if let Some(route) = table.find_external(method, path) {
        let _ = route.params(path);
    }
    for route in table.external() {
        let _ = route.actix_pattern();
        let _ = route.specificity();
    }
}

/// What a plugin answers, as the host takes it: the first byte picks the type, the rest is its
/// JSON in the API's shape (as `plugin call` prints it), and the host's checks and conversions
/// run on it (a rewrite's operation back into the server's, an after-interceptor's additions,
/// a config provider's integrations as definitions, an event down to API 1.0 for older
/// plugins). Whatever converts must convert back to itself.
pub fn plugin_answer(data: &[u8]) {
    use crate::plugins::v1_1;
    use crate::plugins::wit_json::Shape;
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match which % 5 {
        0 => {
            if let Ok(v1_1::Answer::Rewrite(op)) = v1_1::Answer::read(text)
                && let Some(back) = v1_1::operation_back(op)
            {
                assert_eq!(v1_1::operation_back(v1_1::operation(&back)), Some(back));
            }
        }
        1 => {
            if let Ok(added) = v1_1::Additions::read(text) {
                let token = crate::events::Produced::Token {
                    kind: crate::domain::AccountKind::Admin,
                    id: 1,
                    name: "jane".into(),
                };
                let request =
                    crate::events::Produced::RequestAllowed(crate::events::AllowedRequest {
                        caller: crate::events::Caller::Guest,
                        method: "GET".into(),
                        path: "/".into(),
                        resources: Vec::new(),
                        client_address: None,
                    });
                for produced in [token, request] {
                    if let Ok(usable) = crate::plugins::checked_additions(&produced, added.clone())
                    {
                        assert!(usable.claims.len() <= added.claims.len());
                        assert!(usable.headers.len() <= added.headers.len());
                    }
                }
            }
        }
        2 => {
            if let Ok(serde_json::Value::Array(items)) = serde_json::from_str(text) {
                for item in items {
                    if let Ok(d) = v1_1::IntegrationDefinition::read(&item.to_string()) {
                        let _ = crate::services::integration::IntegrationInput::parse(
                            &crate::plugins::integration_form(d),
                            crate::domain::SetupType::Config,
                        );
                    }
                }
            }
        }
        3 => {
            if let Ok(v) = v1_1::Verification::read(text) {
                let _ = v1_1::verification(v);
            }
            if let Ok(v) = v1_1::Verdict::read(text) {
                let _ = v.to_json();
            }
            if let Ok(o) = v1_1::Outcome::read(text) {
                let _ = o.to_json();
            }
        }
        _ => {
            if let Ok(event) = v1_1::wit::Event::read(text) {
                let _ = crate::plugins::v1_0::event(&event);
                let again = v1_1::wit::Event::read(&event.clone().to_json().to_string())
                    .expect("an event written reads back");
                assert_eq!(again.to_json(), event.to_json());
            }
        }
    }
}

/// A query string of Magento's search criteria: whatever parses and passes the checks becomes
/// SQL whose `$n` placeholders are numbered 1, 2, 3 … in the order they appear (SQLite binds
/// them by first appearance), one for each bound value, on both backends.
pub fn search_criteria(data: &[u8]) {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(criteria) = crate::web::search::criteria_from_query(query) else {
        return;
    };
    let sizes = crate::services::search::PageSizes {
        default: 20,
        maximum: 300,
    };
    let Ok((search, applied)) =
        criteria.search(crate::services::integration::SEARCH_FIELDS, &[], sizes)
    else {
        return;
    };
    assert!(applied.page_size.is_some_and(|n| (1..=300).contains(&n)));
    for backend in [
        crate::store::Backend::Sqlite,
        crate::store::Backend::Postgres,
    ] {
        let sql = search.sql(backend, "id");
        let text = format!("{}{}{}", sql.filter, sql.order, sql.page);
        let numbers: Vec<usize> = text
            .split('$')
            .skip(1)
            .map(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().expect("a placeholder is numbered")
            })
            .collect();
        assert_eq!(numbers, (1..=sql.binds.len()).collect::<Vec<_>>(), "{text}");
        assert!(sql.filter.matches('$').count() == sql.filter_binds.len());
    }
}

/// An ACL resource tree file; a tree that parses must walk and grant.
pub fn resource_tree(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(tree) = crate::acl::ResourceTree::parse(text, "fuzz.toml")
    {
        let walked = tree.walk();
        for (_, r) in &walked {
            let grants = tree
                .grant([r.id.as_str()])
                .expect("a walked resource is granted");
            assert!(grants.allows([r.id.as_str()]));
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    type Target = fn(&[u8]);

    const TARGETS: [(&str, Target); 8] = [
        ("oauth_request", super::oauth_request),
        ("config_file", super::config_file),
        ("definition_file", super::definition_file),
        ("route_table", super::route_table),
        ("resource_tree", super::resource_tree),
        ("plugin_manifest", super::plugin_manifest),
        ("plugin_answer", super::plugin_answer),
        ("search_criteria", super::search_criteria),
    ];

    #[test]
    fn every_seed_of_the_corpus_runs() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        for (name, target) in TARGETS {
            let dir = root.join(name);
            let seeds: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.unwrap().path())
                .collect();
            assert!(!seeds.is_empty(), "{} has no seeds", dir.display());
            for seed in seeds {
                target(&std::fs::read(&seed).unwrap());
            }
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            for (_, target) in TARGETS {
                target(&data);
            }
        }

        #[test]
        fn random_headers_never_panic(
            header in "(OAuth|oauth|Bearer)? ?([a-z_]{1,12}=\"[ -~]{0,16}\", ?){0,6}",
            query in "[a-z=&%+~0-9A-F]{0,40}",
            body in "[a-z=&%+~0-9A-F]{0,40}",
        ) {
            let data = format!("{header}\n/p?{query}\napplication/x-www-form-urlencoded\n{body}");
            super::oauth_request(data.as_bytes());
        }
    }
}
