//! ACL resources: the tree, what a grant expands to, and the check.
//!
//! This module owns the resource tree (Magento's merged `acl.xml`), read from a TOML file with a
//! built-in default rooted at `Magento_Backend::admin`. Granting a resource grants the path of
//! its ancestors, as Magento's config converter does; a granted parent does not reach its
//! children (Magento writes an explicit deny for every unselected resource).
//! `Magento_Backend::all` grants everything. Two pseudo-resources sit outside the tree: `self`
//! (held by customers, for their own data) and `anonymous` (held by everyone). The module is
//! pure: it knows nothing of HTTP or SQL.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::Path;

use serde::Deserialize;

/// The resource that grants every other.
pub const ALL: &str = "Magento_Backend::all";
/// The pseudo-resource held by customers for their own data.
pub const SELF: &str = "self";
/// The pseudo-resource held by everyone, guests included.
pub const ANONYMOUS: &str = "anonymous";
/// The resource protecting the management of integrations.
pub const INTEGRATIONS: &str = "Magento_Integration::integrations";

/// The built-in resource tree.
pub const DEFAULT_TREE: &str = include_str!("resources.toml");

/// A resource id of the form `Vendor_Module::name`, or one of the pseudo-resources.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceId(String);

/// Text that is not a resource id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a resource id (expected Vendor_Module::name)")]
pub struct InvalidResourceId(pub String);

impl ResourceId {
    /// ```
    /// use integration_host::acl::ResourceId;
    /// assert!(ResourceId::parse("Magento_Sales::sales").is_ok());
    /// assert!(ResourceId::parse("self").is_ok());
    /// assert!(ResourceId::parse("Magento Sales").is_err());
    /// assert!(ResourceId::parse("::x").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, InvalidResourceId> {
        if s == SELF || s == ANONYMOUS {
            return Ok(Self(s.to_owned()));
        }
        let part = |p: &str| {
            !p.is_empty()
                && p.len() <= 128
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        match s.split_once("::") {
            Some((module, name)) if part(module) && part(name) => Ok(Self(s.to_owned())),
            _ => Err(InvalidResourceId(s.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a principal was granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grants {
    /// Every resource (`Magento_Backend::all`).
    All,
    /// These resources, ancestors included.
    Some(BTreeSet<ResourceId>),
}

impl Grants {
    pub fn none() -> Self {
        Grants::Some(BTreeSet::new())
    }

    /// Whether every one of `required` is granted, as Magento's Web API authorization checks
    /// a route's resources. `anonymous` is always held; `self` only through an explicit grant.
    pub fn allows<'a>(&self, required: impl IntoIterator<Item = &'a str>) -> bool {
        required.into_iter().all(|r| {
            r == ANONYMOUS
                || match self {
                    Grants::All => r != SELF,
                    Grants::Some(set) => set.iter().any(|g| g.as_str() == r),
                }
        })
    }

    /// The stored form: `[Magento_Backend::all]` or the resource ids.
    pub fn to_rules(&self) -> Vec<String> {
        match self {
            Grants::All => vec![ALL.to_owned()],
            Grants::Some(set) => set.iter().map(|r| r.0.clone()).collect(),
        }
    }

    /// Reads the stored form back.
    pub fn from_rules(rules: impl IntoIterator<Item = String>) -> Self {
        let mut set = BTreeSet::new();
        for r in rules {
            if r == ALL {
                return Grants::All;
            }
            set.insert(ResourceId(r));
        }
        Grants::Some(set)
    }
}

/// A requested resource that the tree does not declare.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an ACL resource")]
pub struct UnknownResource(pub String);

/// One node of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub id: ResourceId,
    pub title: String,
    pub parent: Option<ResourceId>,
    pub sort_order: i64,
    pub children: Vec<ResourceId>,
}

/// The resource tree.
#[derive(Debug, Clone)]
pub struct ResourceTree {
    nodes: HashMap<ResourceId, Resource>,
    roots: Vec<ResourceId>,
}

/// A resource file that cannot be used: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: key `{key}`: {message}")]
pub struct TreeError {
    pub origin: String,
    pub key: String,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    resource: Vec<FileResource>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileResource {
    id: String,
    title: String,
    #[serde(default)]
    parent: Option<String>,
    #[serde(default)]
    sort_order: i64,
}

impl ResourceTree {
    /// The built-in tree.
    pub fn builtin() -> Self {
        Self::parse(DEFAULT_TREE, "built-in resource tree").expect("the built-in tree is valid")
    }

    /// Reads a tree file.
    pub fn load(path: &Path) -> Result<Self, TreeError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| TreeError {
            origin: origin.clone(),
            key: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, &origin)
    }

    /// Parses a tree: ids well formed and unique, every parent declared, one or more roots,
    /// no cycles.
    pub fn parse(text: &str, origin: &str) -> Result<Self, TreeError> {
        let err = |key: String, message: String| TreeError {
            origin: origin.to_owned(),
            key,
            message,
        };
        let doc: FileDoc = crate::config::parse_toml_at_key(text).map_err(|(k, m)| err(k, m))?;
        let mut nodes: HashMap<ResourceId, Resource> = HashMap::new();
        let mut order = Vec::new();
        for (i, r) in doc.resource.iter().enumerate() {
            let id = ResourceId::parse(&r.id)
                .map_err(|e| err(format!("resource[{i}].id"), e.to_string()))?;
            if id.as_str() == ALL || id.as_str() == SELF || id.as_str() == ANONYMOUS {
                return Err(err(
                    format!("resource[{i}].id"),
                    format!("`{id}` is reserved and cannot be part of the tree"),
                ));
            }
            let parent = match &r.parent {
                Some(p) => Some(
                    ResourceId::parse(p)
                        .map_err(|e| err(format!("resource[{i}].parent"), e.to_string()))?,
                ),
                None => None,
            };
            if nodes.contains_key(&id) {
                return Err(err(
                    format!("resource[{i}].id"),
                    format!("`{id}` is declared twice"),
                ));
            }
            order.push(id.clone());
            nodes.insert(
                id.clone(),
                Resource {
                    id,
                    title: r.title.clone(),
                    parent,
                    sort_order: r.sort_order,
                    children: Vec::new(),
                },
            );
        }
        let mut roots = Vec::new();
        for (i, id) in order.iter().enumerate() {
            match nodes[id].parent.clone() {
                None => roots.push(id.clone()),
                Some(p) => {
                    if !nodes.contains_key(&p) {
                        return Err(err(
                            format!("resource[{i}].parent"),
                            format!("`{p}` is not declared"),
                        ));
                    }
                    let mut seen = 0usize;
                    let mut cur = Some(p.clone());
                    while let Some(c) = cur {
                        if c == *id || seen > nodes.len() {
                            return Err(err(
                                format!("resource[{i}].parent"),
                                format!("`{id}` is its own ancestor"),
                            ));
                        }
                        seen += 1;
                        // An ancestor further up may be undeclared: the walk ends there, and
                        // that ancestor's child is reported when its turn comes.
                        cur = nodes.get(&c).and_then(|n| n.parent.clone());
                    }
                    nodes
                        .get_mut(&p)
                        .expect("checked")
                        .children
                        .push(id.clone());
                }
            }
        }
        if roots.is_empty() {
            return Err(err(
                "resource".into(),
                "the tree declares no resource".into(),
            ));
        }
        let sort_key = |nodes: &HashMap<ResourceId, Resource>, id: &ResourceId| {
            (nodes[id].sort_order, id.clone())
        };
        let ids: Vec<ResourceId> = nodes.keys().cloned().collect();
        for id in ids {
            let mut children = std::mem::take(&mut nodes.get_mut(&id).expect("present").children);
            children.sort_by_key(|c| sort_key(&nodes, c));
            nodes.get_mut(&id).expect("present").children = children;
        }
        roots.sort_by_key(|r| sort_key(&nodes, r));
        Ok(Self { nodes, roots })
    }

    pub fn get(&self, id: &str) -> Option<&Resource> {
        self.nodes.get(&ResourceId(id.to_owned()))
    }

    pub fn contains(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    /// The top-level resources, in sort order.
    pub fn roots(&self) -> &[ResourceId] {
        &self.roots
    }

    /// Every resource, depth first in sort order, with its depth.
    pub fn walk(&self) -> Vec<(usize, &Resource)> {
        fn visit<'a>(
            tree: &'a ResourceTree,
            id: &ResourceId,
            depth: usize,
            out: &mut Vec<(usize, &'a Resource)>,
        ) {
            let node = &tree.nodes[id];
            out.push((depth, node));
            for c in &node.children {
                visit(tree, c, depth + 1, out);
            }
        }
        let mut out = Vec::with_capacity(self.nodes.len());
        for r in &self.roots {
            visit(self, r, 0, &mut out);
        }
        out
    }

    /// Checks requested resources against the tree and expands them with their ancestors.
    /// `Magento_Backend::all` among them grants everything. Unknown ids are refused by name.
    pub fn grant<'a>(
        &self,
        requested: impl IntoIterator<Item = &'a str>,
    ) -> Result<Grants, UnknownResource> {
        let mut set = BTreeSet::new();
        for r in requested {
            if r == ALL {
                return Ok(Grants::All);
            }
            let mut cur = Some(
                self.nodes
                    .get_key_value(&ResourceId(r.to_owned()))
                    .map(|(k, _)| k.clone())
                    .ok_or_else(|| UnknownResource(r.to_owned()))?,
            );
            while let Some(c) = cur {
                cur = self.nodes[&c].parent.clone();
                set.insert(c);
            }
        }
        Ok(Grants::Some(set))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by AFL++ (fuzz/corpus/resource_tree/crash-*): an undeclared ancestor further up
    /// than a resource's parent panicked the cycle check.
    #[test]
    fn an_undeclared_grandparent_is_named_not_a_panic() {
        let text = "[[resource]]\nid = \"A_C::a\"\ntitle = \"A\"\nparent = \"A_B::b\"\n[[resource]]\nid = \"A_B::b\"\ntitle = \"B\"\nparent = \"A_B::a\"\n";
        let e = ResourceTree::parse(text, "t.toml").unwrap_err();
        assert_eq!(e.key, "resource[1].parent");
        assert!(
            e.message.contains("`A_B::a` is not declared"),
            "{}",
            e.message
        );
    }

    #[test]
    fn builtin_tree_is_rooted_at_admin_and_holds_integrations() {
        let tree = ResourceTree::builtin();
        assert_eq!(tree.roots()[0].as_str(), "Magento_Backend::admin");
        let walk = tree.walk();
        assert_eq!(walk[0].0, 0);
        assert!(tree.contains(INTEGRATIONS));
        assert_eq!(walk.len(), tree.nodes.len());
    }

    #[test]
    fn grant_expands_the_ancestors_path_only() {
        let tree = ResourceTree::builtin();
        let g = tree.grant([INTEGRATIONS]).unwrap();
        let rules = g.to_rules();
        assert_eq!(
            rules,
            vec![
                "Magento_Backend::admin",
                "Magento_Backend::system",
                "Magento_Integration::extensions",
                "Magento_Integration::integrations",
            ]
        );
        assert!(g.allows([INTEGRATIONS, "Magento_Backend::system"]));
        // A sibling and a child of a granted ancestor are not reached.
        assert!(!g.allows(["Magento_User::acl"]));
        assert!(!g.allows([INTEGRATIONS, "Magento_Sales::sales"]));
        assert!(g.allows([ANONYMOUS]));
        assert!(!g.allows([SELF]));
    }

    #[test]
    fn all_grants_everything_but_self() {
        let tree = ResourceTree::builtin();
        let g = tree.grant(["Magento_Sales::sales", ALL]).unwrap();
        assert_eq!(g, Grants::All);
        assert!(g.allows(["Magento_Sales::cancel", INTEGRATIONS, ANONYMOUS]));
        assert!(!g.allows([SELF]));
        assert_eq!(Grants::from_rules(g.to_rules()), Grants::All);
    }

    #[test]
    fn unknown_resources_are_refused() {
        let tree = ResourceTree::builtin();
        let e = tree.grant(["Magento_Nope::x"]).unwrap_err();
        assert_eq!(e, UnknownResource("Magento_Nope::x".into()));
    }

    #[test]
    fn bad_trees_name_the_key() {
        let cases = [
            ("[[resource]]\nid = \"A_B::c\"\n", "resource[0].title"),
            (
                "[[resource]]\nid = \"A_B::c\"\ntitle = \"C\"\nparent = \"A_B::x\"\n",
                "resource[0].parent",
            ),
            (
                "[[resource]]\nid = \"A_B::c\"\ntitle = \"C\"\n[[resource]]\nid = \"A_B::c\"\ntitle = \"D\"\n",
                "resource[1].id",
            ),
            (
                "[[resource]]\nid = \"A_B::a\"\ntitle = \"A\"\nparent = \"A_B::b\"\n[[resource]]\nid = \"A_B::b\"\ntitle = \"B\"\nparent = \"A_B::a\"\n",
                "resource[0].parent",
            ),
            (
                "[[resource]]\nid = \"bad id\"\ntitle = \"C\"\n",
                "resource[0].id",
            ),
            (
                "[[resource]]\nid = \"A_B::c\"\ntitle = \"C\"\ncolour = 1\n",
                "resource[0]",
            ),
        ];
        for (text, key) in cases {
            let e = ResourceTree::parse(text, "t.toml").unwrap_err();
            assert!(e.key.starts_with(key), "{text}: {e}");
            assert_eq!(e.origin, "t.toml");
        }
    }
}
