//! Integrations: Magento's `IntegrationServiceInterface`, and their activation.
//!
//! An integration owns one OAuth consumer, created with it (random 32-character key and
//! secret). Activation either runs the token exchange with the integrator's endpoint (both the
//! endpoint and the identity link URL set) or mints the access token here.

use std::sync::Arc;
use std::time::Duration;

use super::ServiceError;
use super::accounts::Email;
use super::authorization::{AuthorizationService, Principal};
use super::cache::{CAPACITY, TtlCache};
use super::oauth::OauthService;
use super::outbox::recorded;
use super::search::{PageSizes, SearchCriteria, SearchResults};
use crate::acl::Grants;
use crate::crypto;
use crate::domain::{IntegrationStatus, SetupType};
use crate::events::{self, Dispatcher, Event, IntegrationRef, Operation};
use crate::store::search::Direction;
use crate::store::{IntegrationFields, IntegrationRow, NewConsumer, Store, integration_columns};

mod input;

pub use super::search::INTEGRATION_FIELDS as SEARCH_FIELDS;
pub use input::{EndpointUrl, IntegrationForm, IntegrationInput, IntegrationName};

/// An integration as the services answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub endpoint: String,
    pub identity_link_url: String,
    pub status: IntegrationStatus,
    pub consumer_id: i64,
    pub setup_type: SetupType,
    pub config_hash: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Integration {
    /// Whether it comes from a configuration file (read-only outside the sync).
    pub fn is_config(&self) -> bool {
        self.setup_type == SetupType::Config
    }
}

impl From<IntegrationRow> for Integration {
    fn from(r: IntegrationRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            email: r.email,
            endpoint: r.endpoint,
            identity_link_url: r.identity_link_url,
            status: r.status,
            consumer_id: r.consumer_id.unwrap_or_default(),
            setup_type: r.setup_type,
            config_hash: r.config_hash,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// What activation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activation {
    /// The credentials were posted to the endpoint; send the admin to this identity-link URL
    /// (with `oauth_consumer_key` and `success_call_back`). The integration becomes active when
    /// the integrator exchanges its request token for the access token.
    IdentityLink(String),
    /// No exchange: the access token was minted here and the integration is active.
    Minted,
}

/// Magento's IntegrationService.
#[derive(Debug, Clone)]
pub struct IntegrationService {
    store: Store,
    oauth: OauthService,
    authorization: AuthorizationService,
    principals: Arc<TtlCache<i64, Arc<Principal>>>,
    /// Integrations with their grants as the Web API reads them by id; only where the store's
    /// generation sees other processes' writes (see [`Store::sees_other_writers`]), so that a
    /// read never trails a change by more than the store's watch interval.
    details: Arc<TtlCache<i64, Arc<(Integration, Grants)>>>,
    events: Dispatcher,
    page_sizes: PageSizes,
}

impl IntegrationService {
    /// `cache_ttl` bounds how long a principal read here may be reused (see `services::cache`).
    pub fn new(
        store: Store,
        oauth: OauthService,
        authorization: AuthorizationService,
        cache_ttl: Duration,
        events: Dispatcher,
        page_sizes: PageSizes,
    ) -> Self {
        let details_ttl = if store.sees_other_writers() {
            cache_ttl
        } else {
            Duration::ZERO
        };
        Self {
            store,
            oauth,
            authorization,
            principals: Arc::new(TtlCache::new(cache_ttl, CAPACITY)),
            details: Arc::new(TtlCache::new(details_ttl, CAPACITY)),
            events,
            page_sizes,
        }
    }

    /// Runs the sync observers of a change whose event was written with it (and wakes the
    /// delivery to async ones).
    async fn saved(&self, i: &Integration, created: bool) {
        self.events
            .notify(saved_event(i.id, &i.name, created))
            .await;
    }

    pub fn authorization(&self) -> &AuthorizationService {
        &self.authorization
    }

    fn fields<'a>(input: &'a IntegrationInput, rules: &'a [String]) -> IntegrationFields<'a> {
        IntegrationFields {
            name: input.name.as_str(),
            email: input.email.as_ref().map(Email::as_str).unwrap_or(""),
            endpoint: input
                .endpoint
                .as_ref()
                .map(EndpointUrl::as_str)
                .unwrap_or(""),
            identity_link_url: input
                .identity_link_url
                .as_ref()
                .map(EndpointUrl::as_str)
                .unwrap_or(""),
            setup_type: input.setup_type,
            rules,
            config_hash: &input.config_hash,
        }
    }

    /// Runs the before-interceptors (Magento's before plugins) of an operation: what to go on
    /// with, or their refusal as a bad request.
    async fn before(&self, op: Operation) -> Result<Operation, ServiceError> {
        self.events
            .before(op)
            .await
            .map_err(|refusal| ServiceError::Refused(refusal.message))
    }

    /// The before-interceptors on a manual create (`current` none) or update: the input to go
    /// on with, a rewritten one checked like a submitted form. Config integrations are their
    /// files' and are not intercepted.
    async fn intercepted(
        &self,
        input: IntegrationInput,
        current: Option<&Integration>,
    ) -> Result<IntegrationInput, ServiceError> {
        if input.setup_type != SetupType::Manual {
            return Ok(input);
        }
        let raw = events::IntegrationInput {
            name: input.name.as_str().to_owned(),
            email: input.email.as_ref().map(|e| e.as_str().to_owned()),
            endpoint: input.endpoint.as_ref().map(|u| u.as_str().to_owned()),
            identity_link_url: input
                .identity_link_url
                .as_ref()
                .map(|u| u.as_str().to_owned()),
            resources: input.resources.clone(),
            all_resources: input.all_resources,
        };
        let op = match current {
            None => Operation::IntegrationCreate(raw),
            Some(i) => Operation::IntegrationUpdate {
                integration: reference(i),
                input: raw,
            },
        };
        let out = self.before(op.clone()).await?;
        if out == op {
            return Ok(input);
        }
        let (Operation::IntegrationCreate(raw) | Operation::IntegrationUpdate { input: raw, .. }) =
            out
        else {
            return Ok(input);
        };
        let form = IntegrationForm {
            name: raw.name,
            email: raw.email,
            endpoint: raw.endpoint,
            identity_link_url: raw.identity_link_url,
            all_resources: raw.all_resources,
            resources: raw.resources,
        };
        Ok(IntegrationInput::parse(&form, SetupType::Manual)?)
    }

    fn rules(&self, input: &IntegrationInput) -> Result<Vec<String>, ServiceError> {
        Ok(self
            .authorization
            .resolve(input.all_resources, &input.resources)?
            .to_rules())
    }

    /// Creates an integration with its consumer and permissions, in one transaction. Names
    /// are unique regardless of case; unknown resources are refused.
    #[tracing::instrument(skip(self, input), fields(integration = %input.name.as_str()))]
    pub async fn create(&self, input: IntegrationInput) -> Result<Integration, ServiceError> {
        let input = self.intercepted(input, None).await?;
        let rules = self.rules(&input)?;
        let key = crypto::random_token();
        let secret = crypto::random_token();
        let sealed = self.oauth.seal_consumer_secret(&secret);
        let fields = Self::fields(&input, &rules);
        let row = self
            .store
            .insert_integration(
                &fields,
                &NewConsumer {
                    key: &key,
                    secret: &sealed,
                    callback_url: fields.endpoint,
                },
                |row| recorded(&saved_event(row.id, &row.name, true)),
            )
            .await?
            .ok_or_else(|| {
                ServiceError::Conflict(format!(
                    "Integration with name '{}' exists.",
                    input.name.as_str()
                ))
            })?;
        let created: Integration = row.into();
        self.saved(&created, true).await;
        Ok(created)
    }

    /// Changes a manual integration's fields and permissions (its consumer and tokens stay).
    /// Config integrations are read-only: their files change them.
    pub async fn update(
        &self,
        id: i64,
        input: IntegrationInput,
    ) -> Result<Integration, ServiceError> {
        let current = self.get(id).await?;
        if current.is_config() {
            return Err(read_only(&current));
        }
        let input = self.intercepted(input, Some(&current)).await?;
        let changed = self.write(id, input, false).await?;
        self.saved(&changed, false).await;
        Ok(changed)
    }

    /// Applies a changed definition to a config integration: fields and permissions
    /// replaced, tokens deleted and status reset (2), in one transaction.
    pub(crate) async fn reset_from_config(
        &self,
        id: i64,
        input: IntegrationInput,
    ) -> Result<Integration, ServiceError> {
        let changed = self.write(id, input, true).await?;
        self.events
            .notify(Event::IntegrationReset(reference(&changed)))
            .await;
        Ok(changed)
    }

    async fn write(
        &self,
        id: i64,
        input: IntegrationInput,
        reset: bool,
    ) -> Result<Integration, ServiceError> {
        let rules = self.rules(&input)?;
        match self
            .store
            .update_integration(id, &Self::fields(&input, &rules), reset, |row| {
                recorded(&if reset {
                    Event::IntegrationReset(IntegrationRef {
                        id: row.id,
                        name: row.name.clone(),
                    })
                } else {
                    saved_event(row.id, &row.name, false)
                })
            })
            .await
        {
            Ok(Some(row)) => Ok(row.into()),
            Ok(None) => Err(not_found(id)),
            Err(e) if e.is_unique_violation() => Err(ServiceError::Conflict(format!(
                "Integration with name '{}' exists.",
                input.name.as_str()
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits for the declarative sync's lock (see [`Store::sync_lock`]).
    pub async fn sync_lock(&self) -> Result<crate::store::SyncLock, ServiceError> {
        Ok(self.store.sync_lock().await?)
    }

    pub async fn get(&self, id: i64) -> Result<Integration, ServiceError> {
        self.store
            .integration_by_id(id)
            .await?
            .map(Into::into)
            .ok_or_else(|| not_found(id))
    }

    /// An integration with what it was granted, read together (and kept while nothing was
    /// written: the profile of reading one by id showed two thirds of SQLite's time in taking
    /// and dropping the file's shared-memory locks of a read transaction). Shared with the
    /// cache, not copied.
    pub async fn get_with_grants(
        &self,
        id: i64,
    ) -> Result<Arc<(Integration, Grants)>, ServiceError> {
        let read = || async {
            let found = self.store.integration_with_rules(id).await?;
            Ok::<_, ServiceError>(
                found.map(|(row, rules)| Arc::new((row.into(), Grants::from_rules(rules)))),
            )
        };
        let found = self
            .details
            .get_or_fill(id, || self.store.generation(), read)
            .await?
            .ok_or_else(|| not_found(id))?;
        Ok(found)
    }

    pub async fn find_by_name(&self, name: &str) -> Result<Option<Integration>, ServiceError> {
        Ok(self.store.integration_by_name(name).await?.map(Into::into))
    }

    pub async fn find_by_consumer_id(
        &self,
        consumer_id: i64,
    ) -> Result<Option<Integration>, ServiceError> {
        Ok(self
            .store
            .integration_by_consumer(consumer_id)
            .await?
            .map(Into::into))
    }

    /// The integration of a consumer, only when it is active.
    pub async fn find_active_by_consumer_id(
        &self,
        consumer_id: i64,
    ) -> Result<Option<Integration>, ServiceError> {
        Ok(self
            .find_by_consumer_id(consumer_id)
            .await?
            .filter(|i| i.status == IntegrationStatus::Active))
    }

    pub async fn list(&self) -> Result<Vec<Integration>, ServiceError> {
        Ok(self
            .store
            .list_integrations()
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// One page of the integrations the criteria find (sorted by name unless they say
    /// otherwise), each with its grants: one statement on PostgreSQL; on SQLite two for the
    /// page (three when it is not the whole result: the count), whatever its size.
    pub async fn search(
        &self,
        criteria: &SearchCriteria,
    ) -> Result<SearchResults<(Integration, Grants)>, ServiceError> {
        let (search, applied) = criteria.search(
            SEARCH_FIELDS,
            &[(integration_columns::NAME, Direction::Asc)],
            self.page_sizes,
        )?;
        let page = self.store.search_integrations(&search).await?;
        let mut grants = match page.rules {
            Some(rules) => rules
                .into_iter()
                .map(|(id, r)| (id, Grants::from_rules(r)))
                .collect(),
            None => {
                let ids: Vec<i64> = page.rows.iter().map(|r| r.id).collect();
                self.authorization.selected_resources_of(&ids).await?
            }
        };
        let total_count = page.total;
        let items = page
            .rows
            .into_iter()
            .map(|row| {
                let g = grants.remove(&row.id).unwrap_or_else(Grants::none);
                (Integration::from(row), g)
            })
            .collect();
        Ok(SearchResults {
            items,
            search_criteria: applied,
            total_count,
        })
    }

    /// Deletes a manual integration with its consumer, tokens and ACL role (its nonces go
    /// with it on PostgreSQL, with the nonce cleanup on SQLite). Config integrations are
    /// removed by removing their definition.
    pub async fn delete(&self, id: i64) -> Result<Integration, ServiceError> {
        let integration = self.get(id).await?;
        if integration.is_config() {
            return Err(ServiceError::Invalid(format!(
                "The integration '{}' is declared in a configuration file: remove it there to delete it.",
                integration.name
            )));
        }
        self.before(Operation::IntegrationDelete(reference(&integration)))
            .await?;
        let event = Event::IntegrationDeleted(reference(&integration));
        self.store
            .delete_integration(id, Some(&recorded(&event)))
            .await?;
        self.events.notify(event).await;
        Ok(integration)
    }

    /// Deletes any integration (the sync removing a definition).
    pub(crate) async fn delete_any(&self, id: i64) -> Result<bool, ServiceError> {
        let Some(integration) = self.store.integration_by_id(id).await? else {
            return Ok(false);
        };
        let event = Event::IntegrationDeleted(IntegrationRef {
            id: integration.id,
            name: integration.name,
        });
        let deleted = self
            .store
            .delete_integration(id, Some(&recorded(&event)))
            .await?;
        if deleted {
            self.events.notify(event).await;
        }
        Ok(deleted)
    }

    /// The principal of a consumer that authenticated: its integration when active (with
    /// its grants), otherwise a guest, as Magento's `OauthUserContext` decides.
    ///
    /// Read through the credential cache (see `services::cache`).
    pub async fn principal(&self, consumer_id: i64) -> Result<Arc<Principal>, ServiceError> {
        let read = || async {
            Ok::<_, ServiceError>(Some(Arc::new(
                match self.find_active_by_consumer_id(consumer_id).await? {
                    Some(i) => Principal::Integration {
                        grants: self.authorization.selected_resources(i.id).await?,
                        id: i.id,
                        name: i.name,
                        consumer_id,
                    },
                    None => Principal::Guest,
                },
            )))
        };
        let principal = self
            .principals
            .get_or_fill(consumer_id, || self.store.generation(), read)
            .await?;
        Ok(principal.expect("a principal is always read"))
    }

    /// The resources an integration was granted.
    pub async fn selected_resources(&self, id: i64) -> Result<Grants, ServiceError> {
        self.authorization.selected_resources(id).await
    }

    /// Activates (or, with `reauthorize`, re-activates with new tokens) an integration.
    #[tracing::instrument(skip(self))]
    pub async fn activate(&self, id: i64, reauthorize: bool) -> Result<Activation, ServiceError> {
        let integration = self.get(id).await?;
        if !reauthorize && integration.status == IntegrationStatus::Active {
            return Err(ServiceError::Invalid(format!(
                "integration `{}` is already active; reauthorize it to replace its tokens",
                integration.name
            )));
        }
        self.before(Operation::IntegrationActivate(reference(&integration)))
            .await?;
        self.oauth
            .delete_integration_token(integration.consumer_id)
            .await?;
        self.store
            .set_integration_status(id, IntegrationStatus::Inactive, None)
            .await?;
        let activated = Event::IntegrationActivated(reference(&integration));
        if !integration.endpoint.is_empty() && !integration.identity_link_url.is_empty() {
            self.oauth
                .post_to_consumer(integration.consumer_id, &integration.endpoint)
                .await?;
            let consumer = self.oauth.load_consumer(integration.consumer_id).await?;
            let mut link = url::Url::parse(&integration.identity_link_url)
                .map_err(|_| ServiceError::Invalid("the identity link URL is invalid".into()))?;
            link.query_pairs_mut()
                .append_pair("oauth_consumer_key", &consumer.key)
                .append_pair("success_call_back", &self.oauth.success_callback_url(id));
            // The change reported spans the post to the endpoint: written once it succeeded.
            self.store.record_event(&recorded(&activated)).await?;
            self.events.notify(activated).await;
            Ok(Activation::IdentityLink(link.into()))
        } else {
            self.oauth
                .create_access_token(integration.consumer_id, true)
                .await?;
            self.store
                .set_integration_status(id, IntegrationStatus::Active, Some(&recorded(&activated)))
                .await?;
            self.events.notify(activated).await;
            Ok(Activation::Minted)
        }
    }
}

fn read_only(integration: &Integration) -> ServiceError {
    ServiceError::Invalid(format!(
        "The integration '{}' is declared in a configuration file and cannot be changed here.",
        integration.name
    ))
}

fn not_found(id: i64) -> ServiceError {
    ServiceError::NotFound(format!("The integration with ID \"{id}\" doesn't exist."))
}

/// `integration_saved`.
fn saved_event(id: i64, name: &str, created: bool) -> Event {
    Event::IntegrationSaved {
        integration: IntegrationRef {
            id,
            name: name.to_owned(),
        },
        created,
    }
}

/// An integration as operations and events name it.
fn reference(i: &Integration) -> IntegrationRef {
    IntegrationRef {
        id: i.id,
        name: i.name.clone(),
    }
}
