//! Importing a Magento 2.4 store's integrations (and, on request, its accounts) with their
//! working credentials, so that integrators keep signing requests as they did.
//!
//! This module owns the rules of an import: which Magento row becomes what here, what is
//! dropped or skipped and why, and what counts as changed on a second run. Rows are matched by
//! consumer key first (an integration renamed in Magento since the last import is the same
//! one), then by name: a name taken here by an integration with another consumer key was made
//! here, and the Magento row is skipped rather than take it over. A Magento config integration
//! (setup type 1) stays one here only if a definition file here declares it (its fingerprint is
//! then the definition's, so the next sync leaves the imported credentials alone); otherwise it
//! becomes a manual integration, said in the report, since the sync deletes config
//! integrations no file declares. Accounts keep their Magento password hash until their first
//! sign-in here replaces it; an account made here (or signed in here since) is left alone.
//! Everything decided is written in one transaction ([`Store::import_magento`]), or nothing
//! with `dry_run`.

use std::collections::BTreeSet;

use crate::acl::{Grants, ResourceTree};
use crate::crypto::{self, MAGENTO_HASH_PREFIX, MagentoKeys};
use crate::domain::{AccountKind, IntegrationStatus, SetupType};
use crate::events::{Event, IntegrationRef};
use crate::services::ServiceError;
use crate::services::accounts::{Email, Username};
use crate::services::integration::IntegrationName;
use crate::services::oauth::OauthService;
use crate::services::outbox::recorded;
use crate::store::Store;
use crate::store::magento::{
    ImportedAccount, ImportedIntegration, MagentoAccount, MagentoIntegration, MagentoSource,
};

/// What an import is asked to do.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// Decide and report; write nothing.
    pub dry_run: bool,
    /// Also import admin users and customers with their password hashes.
    pub with_accounts: bool,
}

/// Rows of one kind: how many were imported new, updated, found unchanged, skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub imported: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub skipped: usize,
}

/// What an import did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub integrations: Counts,
    pub admins: Counts,
    pub customers: Counts,
    /// One line per row skipped, with its Magento id and the reason.
    pub skipped: Vec<String>,
    /// One line per thing dropped or changed on the way (an unknown ACL resource, a config
    /// integration made manual), with the row's Magento id.
    pub notes: Vec<String>,
    pub dry_run: bool,
}

/// A config integration a definition file here declares: its name and the fingerprint of its
/// definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub name: String,
    pub config_hash: String,
}

/// What the import reads and where it writes.
#[derive(Debug)]
pub struct Import<'a> {
    pub store: &'a Store,
    pub oauth: &'a OauthService,
    pub tree: &'a ResourceTree,
    /// The config integrations this server's definition files declare.
    pub declared: &'a [Declared],
    pub source: &'a MagentoSource,
    pub keys: &'a MagentoKeys,
}

/// One row's fate.
enum Decision<T> {
    Write(T, Change),
    Unchanged,
    Skip(String),
}

#[derive(Clone, Copy)]
enum Change {
    New,
    Updated,
}

impl Counts {
    fn count<T>(&mut self, d: &Decision<T>) {
        match d {
            Decision::Write(_, Change::New) => self.imported += 1,
            Decision::Write(_, Change::Updated) => self.updated += 1,
            Decision::Unchanged => self.unchanged += 1,
            Decision::Skip(_) => self.skipped += 1,
        }
    }
}

impl Import<'_> {
    /// Reads the Magento database, decides every row, and writes the result in one
    /// transaction (not with `dry_run`).
    pub async fn run(&self, options: ImportOptions) -> Result<ImportReport, ServiceError> {
        let mut report = ImportReport {
            dry_run: options.dry_run,
            ..ImportReport::default()
        };
        let mut integrations = Vec::new();
        let mut names_taken = BTreeSet::new();
        for m in self.source.integrations().await? {
            let d = self.integration(&m, &mut report.notes).await?;
            // Two Magento rows may not become one name here (Magento's names are unique, but
            // case-sensitively).
            let d = match d {
                Decision::Write(i, _) if !names_taken.insert(i.name.to_lowercase()) => {
                    Decision::Skip(format!(
                        "another imported integration is named `{}` (names are unique here regardless of case)",
                        i.name
                    ))
                }
                other => other,
            };
            report.integrations.count(&d);
            match d {
                Decision::Write(i, _) => integrations.push(i),
                Decision::Skip(why) => report
                    .skipped
                    .push(format!("integration {} `{}`: {why}", m.id, m.name)),
                Decision::Unchanged => {}
            }
        }
        let mut accounts = Vec::new();
        if options.with_accounts {
            for kind in [AccountKind::Admin, AccountKind::Customer] {
                let mut logins = BTreeSet::new();
                for m in self.source.accounts(kind).await? {
                    let d = if logins.insert(m.login.to_lowercase()) {
                        self.account(kind, &m).await?
                    } else {
                        Decision::Skip(format!(
                            "another {} with this login was imported first",
                            account_noun(kind)
                        ))
                    };
                    match kind {
                        AccountKind::Admin => report.admins.count(&d),
                        AccountKind::Customer => report.customers.count(&d),
                    }
                    match d {
                        Decision::Write(a, _) => accounts.push(a),
                        Decision::Skip(why) => report.skipped.push(format!(
                            "{} {} `{}`: {why}",
                            account_noun(kind),
                            m.id,
                            m.login
                        )),
                        Decision::Unchanged => {}
                    }
                }
            }
        }
        if !options.dry_run && (!integrations.is_empty() || !accounts.is_empty()) {
            self.store
                .import_magento(&integrations, &accounts, |id, name, created| {
                    recorded(&Event::IntegrationSaved {
                        integration: IntegrationRef {
                            id,
                            name: name.to_owned(),
                        },
                        created,
                    })
                })
                .await?;
        }
        Ok(report)
    }

    async fn integration(
        &self,
        m: &MagentoIntegration,
        notes: &mut Vec<String>,
    ) -> Result<Decision<ImportedIntegration>, ServiceError> {
        let Some(consumer) = &m.consumer else {
            return Ok(Decision::Skip("it has no OAuth consumer".into()));
        };
        if let Err(e) = IntegrationName::parse(&m.name) {
            return Ok(Decision::Skip(format!("its name cannot be used here: {e}")));
        }
        let Some(status) = IntegrationStatus::from_code(m.status) else {
            return Ok(Decision::Skip(format!("unknown status {}", m.status)));
        };
        let secret = match self.keys.decrypt(&consumer.encrypted_secret) {
            Ok(s) => s,
            Err(e) => return Ok(Decision::Skip(format!("the consumer secret: {e}"))),
        };
        let token = match &m.token {
            None => None,
            Some((token, encrypted)) => match self.keys.decrypt(encrypted) {
                Ok(s) => Some((token.clone(), s)),
                Err(e) => return Ok(Decision::Skip(format!("the access token secret: {e}"))),
            },
        };
        let rules = self.grants(m, notes).to_rules();
        let (setup_type, config_hash) = self.setup(m, notes);

        // The integration here: by consumer key, else by name.
        let consumer_here = self.store.consumer_by_key(&consumer.key).await?;
        let by_key = match &consumer_here {
            Some(c) => self.store.integration_by_consumer(c.id).await?,
            None => None,
        };
        let by_name = self.store.integration_by_name(&m.name).await?;
        let existing = match (by_key, by_name) {
            (Some(k), Some(n)) if k.id != n.id => {
                return Ok(Decision::Skip(format!(
                    "it was imported before as integration {} here, and its new name is taken here by integration {}",
                    k.id, n.id
                )));
            }
            (Some(k), _) => Some(k),
            (None, Some(n)) => {
                return Ok(Decision::Skip(format!(
                    "an integration with this name was made here (id {}); rename one of them",
                    n.id
                )));
            }
            (None, None) if consumer_here.is_some() => {
                return Ok(Decision::Skip(
                    "its consumer key belongs to a consumer here that no integration owns".into(),
                ));
            }
            (None, None) => None,
        };
        let imported = ImportedIntegration {
            existing: existing.as_ref().map(|e| e.id),
            name: m.name.clone(),
            email: m.email.clone(),
            endpoint: m.endpoint.clone(),
            identity_link_url: m.identity_link_url.clone(),
            status,
            setup_type,
            config_hash,
            rules,
            consumer_key: consumer.key.clone(),
            sealed_secret: self.oauth.seal_consumer_secret(&secret),
            token: token
                .as_ref()
                .map(|(t, s)| self.oauth.seal_integration_token(t, s)),
        };
        let Some(current) = existing else {
            return Ok(Decision::Write(imported, Change::New));
        };
        let consumer_id = current.consumer_id.unwrap_or_default();
        let same = current.name == imported.name
            && current.email == imported.email
            && current.endpoint == imported.endpoint
            && current.identity_link_url == imported.identity_link_url
            && current.status == imported.status
            && current.setup_type == imported.setup_type
            && current.config_hash == imported.config_hash
            && sorted(self.store.integration_rules(current.id).await?)
                == sorted(imported.rules.clone())
            && self.oauth.load_consumer(consumer_id).await?.secret == secret
            && self
                .oauth
                .get_access_token(consumer_id)
                .await?
                .map(|p| (p.token, p.secret))
                == token;
        Ok(if same {
            Decision::Unchanged
        } else {
            Decision::Write(imported, Change::Updated)
        })
    }

    /// The integration's grants here: `Magento_Backend::all`, or the allowed resources this
    /// server's ACL tree knows (with their ancestors); the others are dropped and noted.
    fn grants(&self, m: &MagentoIntegration, notes: &mut Vec<String>) -> Grants {
        if m.resources.iter().any(|r| r == crate::acl::ALL) {
            return Grants::All;
        }
        let mut known = Vec::new();
        for r in &m.resources {
            match self.tree.grant([r.as_str()]) {
                Ok(_) => known.push(r.as_str()),
                Err(_) => notes.push(format!(
                    "integration {} `{}`: resource `{r}` is not in this server's ACL tree; dropped from its grants",
                    m.id, m.name
                )),
            }
        }
        self.tree.grant(known).unwrap_or_else(|_| Grants::none())
    }

    /// Setup type and fingerprint: config only where a definition here declares it.
    fn setup(&self, m: &MagentoIntegration, notes: &mut Vec<String>) -> (SetupType, String) {
        if m.setup_type != 1 {
            return (SetupType::Manual, String::new());
        }
        let declared = self
            .declared
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(&m.name));
        match declared {
            Some(d) => (SetupType::Config, d.config_hash.clone()),
            None => {
                notes.push(format!(
                    "integration {} `{}`: a config integration in Magento, but no definition file here declares it; imported as a manual integration",
                    m.id, m.name
                ));
                (SetupType::Manual, String::new())
            }
        }
    }

    async fn account(
        &self,
        kind: AccountKind,
        m: &MagentoAccount,
    ) -> Result<Decision<ImportedAccount>, ServiceError> {
        let login_ok = match kind {
            AccountKind::Admin => Username::parse(&m.login).map(|_| ()),
            AccountKind::Customer => Email::parse(&m.login).map(|_| ()),
        };
        if let Err(e) = login_ok {
            return Ok(Decision::Skip(format!(
                "its login cannot be used here: {e}"
            )));
        }
        if let Err(e) = crypto::check_magento_hash(&m.password_hash) {
            return Ok(Decision::Skip(e.to_string()));
        }
        let imported = ImportedAccount {
            kind,
            existing: None,
            login: m.login.clone(),
            email: m.email.clone(),
            firstname: m.firstname.clone(),
            lastname: m.lastname.clone(),
            password_hash: format!("{MAGENTO_HASH_PREFIX}{}", m.password_hash),
            is_active: m.is_active,
        };
        Ok(match self.store.find_account(kind, &m.login).await? {
            None => Decision::Write(imported, Change::New),
            Some(here) if !here.password_hash.starts_with(MAGENTO_HASH_PREFIX) => {
                Decision::Skip(format!(
                    "an account with this login was made here, or signed in here since it was imported (id {}); left as it is",
                    here.id
                ))
            }
            Some(here)
                if here.login == imported.login
                    && here.email == imported.email
                    && here.firstname == imported.firstname
                    && here.lastname == imported.lastname
                    && here.password_hash == imported.password_hash
                    && here.is_active == imported.is_active =>
            {
                Decision::Unchanged
            }
            Some(here) => Decision::Write(
                ImportedAccount {
                    existing: Some(here.id),
                    ..imported
                },
                Change::Updated,
            ),
        })
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn account_noun(kind: AccountKind) -> &'static str {
    match kind {
        AccountKind::Admin => "admin user",
        AccountKind::Customer => "customer",
    }
}
