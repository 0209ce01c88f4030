//! The check that keeps the rooms of `docs/architecture.md` apart: every `crate::…`, `super::…`
//! and child-module path in the non-test code of `host/src` is read, and the test fails when a
//! file reaches a room its own room may not import, or when files import each other in a cycle.
//! Re-exports (`pub use`) and `mod` declarations are a module's public face, not imports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each room and the rooms it may import (besides itself), but for the two at the top (see
/// [`TOP`]). Keep in step with `docs/architecture.md`.
const ROOMS: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("clock", &[]),
    ("config", &[]),
    ("oauth", &[]),
    ("events", &["domain", "clock"]),
    ("crypto", &["config"]),
    ("acl", &["config"]),
    ("telemetry", &["config"]),
    ("webapi", &["acl", "config"]),
    ("store", &["domain", "config", "clock"]),
    (
        "services",
        &[
            "store", "domain", "crypto", "acl", "events", "oauth", "config", "clock",
        ],
    ),
    (
        "plugins",
        &["services", "domain", "events", "config", "clock"],
    ),
    (
        "declarative",
        &["services", "plugins", "acl", "domain", "config"],
    ),
    ("jobs", &["store", "domain", "config", "clock"]),
    (
        "web",
        &[
            "services",
            "plugins",
            "declarative",
            "domain",
            "webapi",
            "telemetry",
            "acl",
            "oauth",
            "crypto",
            "events",
            "store",
            "config",
            "clock",
        ],
    ),
    (
        "fuzzing",
        &[
            "acl",
            "config",
            "declarative",
            "domain",
            "events",
            "oauth",
            "plugins",
            "services",
            "store",
            "web",
            "webapi",
        ],
    ),
    ("architecture", &[]),
];

/// The rooms at the top, which may import every room of [`ROOMS`] but those named: `startup`
/// wires everything but the command line; `cli` is the operator's door to everything but HTTP.
const TOP: &[(&str, &[&str])] = &[
    ("startup", &["cli", "fuzzing", "architecture"]),
    ("cli", &["web", "fuzzing", "architecture"]),
];

/// Every room and what it may import.
fn allowed() -> BTreeMap<&'static str, Vec<&'static str>> {
    let mut out: BTreeMap<&str, Vec<&str>> = ROOMS
        .iter()
        .map(|(room, may)| (*room, may.to_vec()))
        .collect();
    for (room, not) in TOP {
        let may = ROOMS
            .iter()
            .map(|(r, _)| *r)
            .chain(TOP.iter().map(|(r, _)| *r))
            .filter(|r| r != room && !not.contains(r))
            .collect();
        out.insert(room, may);
    }
    out
}

/// A source file: its module path (`["services", "oauth"]`) and its non-test code.
struct Source {
    module: Vec<String>,
    code: String,
}

impl Source {
    /// What this file re-exports: the name it is known by here, and the path it comes from.
    fn reexports(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut rest = self.code.as_str();
        while let Some(i) = rest.find("pub use ") {
            let Some(end) = rest[i..].find(';') else {
                break;
            };
            for path in expand_use(&rest[i + 8..i + end]) {
                let (path, name) = match path.split_once(" as ") {
                    Some((p, n)) => (p.to_owned(), n.to_owned()),
                    None => (
                        path.clone(),
                        path.rsplit("::").next().unwrap_or("").to_owned(),
                    ),
                };
                out.insert(name, path);
            }
            rest = &rest[i + end + 1..];
        }
        out
    }
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn sources() -> BTreeMap<PathBuf, Source> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("src is readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = src_dir();
    let mut files = Vec::new();
    walk(&root, &mut files);
    files
        .into_iter()
        .filter_map(|path| {
            let rel = path.strip_prefix(&root).expect("under src").to_path_buf();
            let mut module: Vec<String> = rel
                .with_extension("")
                .iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect();
            if module.last().is_some_and(|m| m == "mod") {
                module.pop();
            }
            // The checker itself, whose tests hold forbidden paths as examples.
            if module == ["lib"] || module == ["main"] || module == ["architecture"] {
                return None;
            }
            // A file that is itself a test module (`oauth/tests.rs`) holds no product code.
            if module.last().is_some_and(|m| m == "tests") {
                return None;
            }
            let text = std::fs::read_to_string(&path).expect("source is readable");
            Some((
                rel,
                Source {
                    module,
                    code: product_code(&text),
                },
            ))
        })
        .collect()
}

/// The text without comments and without the `#[cfg(test)]` items.
fn product_code(text: &str) -> String {
    let mut out = String::new();
    let mut skip_depth: Option<i32> = None;
    let mut pending_test = false;
    for line in text.lines() {
        let code = match line.find("//") {
            // A `//` inside a string (a URL) is rare in paths we read; cutting there only
            // shortens a string literal.
            Some(i) => &line[..i],
            None => line,
        };
        let trimmed = code.trim();
        if let Some(depth) = skip_depth.as_mut() {
            *depth += brace_balance(code);
            if *depth <= 0 && code.contains('}') {
                skip_depth = None;
            }
            continue;
        }
        if trimmed == "#[cfg(test)]" {
            pending_test = true;
            continue;
        }
        if pending_test {
            pending_test = false;
            let balance = brace_balance(code);
            if balance > 0 {
                skip_depth = Some(balance);
            }
            // A one-line test item (`#[cfg(test)] use …;`) is skipped with its line.
            continue;
        }
        out.push_str(code);
        out.push('\n');
    }
    out
}

fn brace_balance(code: &str) -> i32 {
    code.chars()
        .map(|c| match c {
            '{' => 1,
            '}' => -1,
            _ => 0,
        })
        .sum()
}

/// Expands a `use` tree (`crate::{a, b::{c, d}}`) into its paths.
fn expand_use(tree: &str) -> Vec<String> {
    let tree = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let tree: String = tree
        .replace(" as ", "@")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let mut out = Vec::new();
    expand_into("", &tree, &mut out);
    out.into_iter().map(|p| p.replace('@', " as ")).collect()
}

fn expand_into(prefix: &str, tree: &str, out: &mut Vec<String>) {
    match tree.find('{') {
        None => out.push(format!("{prefix}{tree}")),
        Some(open) => {
            let head = format!("{prefix}{}", &tree[..open]);
            let inner = &tree[open + 1..tree.rfind('}').expect("balanced use tree")];
            let mut depth = 0;
            let mut start = 0;
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if !inner[start..i].is_empty() {
                            expand_into(&head, &inner[start..i], out);
                        }
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            if !inner[start..].is_empty() {
                expand_into(&head, &inner[start..], out);
            }
        }
    }
}

/// Every path the code names, as written (`crate::store::Store`, `super::cache::TtlCache`,
/// `oauth::collect`), from `use` items and from inline paths. `pub use` items are left out.
fn named_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    let mut body = String::new();
    // `use` items, which may span lines.
    while let Some(i) = rest.find("use ") {
        let before = &rest[..i];
        body.push_str(before);
        let at_item_start = before
            .chars()
            .last()
            .is_none_or(|c| c.is_whitespace() || c == ';' || c == '{' || c == '}');
        let Some(end) = rest[i..].find(';') else {
            body.push_str(&rest[i..]);
            rest = "";
            break;
        };
        let item = &rest[i + 4..i + end];
        let is_pub = before.trim_end().ends_with("pub") || before.trim_end().ends_with(')');
        if at_item_start && !item.contains('(') && !item.contains('"') {
            if !is_pub {
                paths.extend(
                    expand_use(item)
                        .into_iter()
                        .map(|p| p.split(" as ").next().unwrap_or_default().to_owned()),
                );
            }
        } else {
            body.push_str(&rest[i..i + end + 1]);
        }
        rest = &rest[i + end + 1..];
    }
    body.push_str(rest);
    // Inline paths: a run of `ident::` segments ending in an identifier.
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let starts = (c.is_ascii_alphabetic() || c == b'_')
            && (i == 0
                || !(bytes[i - 1].is_ascii_alphanumeric()
                    || bytes[i - 1] == b'_'
                    || bytes[i - 1] == b':'));
        if !starts {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < bytes.len()
            && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_' || bytes[j] == b':')
        {
            j += 1;
        }
        let path = &body[i..j];
        if path.contains("::") {
            paths.push(path.trim_end_matches(':').to_owned());
        }
        i = j.max(i + 1);
    }
    paths
}

/// The module paths declared by `mod x;` in this code.
fn child_modules(code: &str) -> BTreeSet<String> {
    code.lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            let l = l.strip_prefix("pub(crate) ").unwrap_or(l);
            l.strip_prefix("mod ")
                .and_then(|m| m.strip_suffix(';'))
                .map(str::to_owned)
        })
        .collect()
}

/// The module a path names, as an absolute module path, when it names one of this crate.
fn resolve(from: &[String], children: &BTreeSet<String>, path: &str) -> Option<Vec<String>> {
    let segments: Vec<&str> = path.split("::").collect();
    let (mut base, rest): (Vec<String>, &[&str]) = match segments[0] {
        "crate" => (Vec::new(), &segments[1..]),
        "self" => (from.to_vec(), &segments[1..]),
        "super" => {
            let mut base = from.to_vec();
            let mut k = 0;
            while segments.get(k) == Some(&"super") {
                base.pop()?;
                k += 1;
            }
            (base, &segments[k..])
        }
        first if children.contains(first) => (from.to_vec(), &segments[..]),
        _ => return None,
    };
    for s in rest {
        base.push((*s).to_owned());
    }
    Some(base)
}

/// The file that defines what `module` names: the longest prefix of it that is a file, and
/// through that file's re-exports (`pub use`) the file they come from.
fn owning_file(
    sources: &BTreeMap<PathBuf, Source>,
    files: &BTreeMap<Vec<String>, PathBuf>,
    module: &[String],
) -> Option<PathBuf> {
    let mut module = module.to_vec();
    for _ in 0..8 {
        let n = (1..=module.len())
            .rev()
            .find(|n| files.contains_key(&module[..*n]))?;
        let file = files[&module[..n]].clone();
        let source = &sources[&file];
        let Some(via) = module
            .get(n)
            .and_then(|name| source.reexports().get(name).cloned())
        else {
            return Some(file);
        };
        let children = child_modules(&source.code);
        let mut next = resolve(&source.module, &children, &via)?;
        next.extend(module[n + 1..].iter().cloned());
        module = next;
    }
    None
}

#[test]
fn rooms_import_only_what_they_may() {
    let sources = sources();
    let allowed = allowed();
    let mut wrong = Vec::new();
    for (file, source) in &sources {
        let room = source.module[0].as_str();
        let Some(may) = allowed.get(room) else {
            wrong.push(format!(
                "{}: room `{room}` is not in architecture.rs ROOMS (nor in docs/architecture.md)",
                file.display()
            ));
            continue;
        };
        let children = child_modules(&source.code);
        for path in named_paths(&source.code) {
            let Some(target) = resolve(&source.module, &children, &path) else {
                continue;
            };
            let Some(target_room) = target.first() else {
                continue;
            };
            if target_room != room && !may.contains(&target_room.as_str()) {
                wrong.push(format!(
                    "{}: `{path}`: the {room} room may not import the {target_room} room",
                    file.display()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "forbidden arrows:\n{}", wrong.join("\n"));
}

#[test]
fn no_import_cycle_between_files() {
    let sources = sources();
    let by_module: BTreeMap<Vec<String>, PathBuf> = sources
        .iter()
        .map(|(f, s)| (s.module.clone(), f.clone()))
        .collect();
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for (file, source) in &sources {
        let children = child_modules(&source.code);
        let targets = edges.entry(file.clone()).or_default();
        for path in named_paths(&source.code) {
            if let Some(target) = resolve(&source.module, &children, &path)
                .and_then(|m| owning_file(&sources, &by_module, &m))
                .filter(|t| t != file)
            {
                targets.insert(target);
            }
        }
    }
    // Strongly connected components (Tarjan): each of more than one file is a cycle.
    struct Tarjan<'a> {
        edges: &'a BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        index: BTreeMap<&'a PathBuf, usize>,
        low: BTreeMap<&'a PathBuf, usize>,
        stack: Vec<&'a PathBuf>,
        on_stack: BTreeSet<&'a PathBuf>,
        cycles: Vec<Vec<&'a PathBuf>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, file: &'a PathBuf) {
            let n = self.index.len();
            self.index.insert(file, n);
            self.low.insert(file, n);
            self.stack.push(file);
            self.on_stack.insert(file);
            for next in self.edges.get(file).into_iter().flatten() {
                let Some((next, _)) = self.edges.get_key_value(next) else {
                    continue;
                };
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[file].min(self.low[next]);
                    self.low.insert(file, low);
                } else if self.on_stack.contains(next) {
                    let low = self.low[file].min(self.index[next]);
                    self.low.insert(file, low);
                }
            }
            if self.low[file] == self.index[file] {
                let mut component = Vec::new();
                while let Some(f) = self.stack.pop() {
                    self.on_stack.remove(f);
                    component.push(f);
                    if f == file {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.cycles.push(component);
                }
            }
        }
    }
    let mut tarjan = Tarjan {
        edges: &edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        cycles: Vec::new(),
    };
    for file in edges.keys() {
        if !tarjan.index.contains_key(file) {
            tarjan.visit(file);
        }
    }
    let cycles: Vec<String> = tarjan
        .cycles
        .iter()
        .map(|c| {
            c.iter()
                .map(|f| {
                    let to: Vec<String> = edges[*f]
                        .iter()
                        .filter(|t| c.contains(t))
                        .map(|t| t.display().to_string())
                        .collect();
                    format!("  {} -> {}", f.display(), to.join(", "))
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    assert!(
        cycles.is_empty(),
        "files that import each other (each cycle: its files and their imports within it):\n{}",
        cycles.join("\n\n")
    );
}

/// The check reads what it must: a forbidden arrow and a cycle in made-up code are found.
#[test]
fn the_reader_finds_paths_in_use_trees_and_code() {
    let code = product_code(
        "use crate::{store::{Store, now}, web};\npub use inner::Thing;\nmod inner;\nfn f() { let x = crate::cli::iso8601(0); inner::g(); }\n#[cfg(test)]\nmod tests {\n    use crate::startup;\n}\n",
    );
    let paths = named_paths(&code);
    assert!(
        paths.contains(&"crate::store::Store".to_owned()),
        "{paths:?}"
    );
    assert!(paths.contains(&"crate::web".to_owned()), "{paths:?}");
    assert!(
        paths.contains(&"crate::cli::iso8601".to_owned()),
        "{paths:?}"
    );
    assert!(paths.contains(&"inner::g".to_owned()), "{paths:?}");
    assert!(!paths.iter().any(|p| p.contains("startup")), "{paths:?}");
    assert!(!paths.iter().any(|p| p.contains("Thing")), "{paths:?}");
    let from = vec!["services".to_owned(), "oauth".to_owned()];
    let children = child_modules(&code);
    assert_eq!(
        resolve(&from, &children, "super::cache::TtlCache"),
        Some(vec!["services".into(), "cache".into(), "TtlCache".into()])
    );
    assert_eq!(
        resolve(&from, &children, "inner::g"),
        Some(vec![
            "services".into(),
            "oauth".into(),
            "inner".into(),
            "g".into()
        ])
    );
    assert_eq!(resolve(&from, &children, "std::sync::Arc"), None);
}
