//! Admin roles (Magento's user roles): what an admin may reach.
//!
//! A role has a name and grants either every resource or a set of resources of the ACL tree,
//! ancestors implied (as an integration's grants are resolved). Each admin holds one role; an
//! admin without one cannot sign in, and their tokens reach nothing. The role is read when a
//! request is made (through the token service's cache, which a role change empties), so a
//! change applies at once. The built-in role `Administrators` grants everything and cannot be
//! changed or deleted, so that there is always a role that can manage the others; a role
//! admins hold cannot be deleted.

use std::sync::Arc;

use super::{FieldError, ServiceError};
use crate::acl::{Grants, ResourceTree};
use crate::store::{ADMINISTRATORS, RoleAssignment, RoleDeletion, RoleRow, RoleSave, Store};

/// The longest role name (Magento's `authorization_role.role_name` is 50 characters).
pub const NAME_MAX: usize = 50;

/// A role as the services answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub id: i64,
    pub name: String,
    pub grants: Grants,
    /// How many admins hold it.
    pub admins: i64,
}

impl Role {
    /// Whether it is the built-in `Administrators`, which cannot change.
    pub fn built_in(&self) -> bool {
        self.name.eq_ignore_ascii_case(ADMINISTRATORS)
    }

    fn from_row(row: RoleRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            grants: Grants::from_rules(row.rules),
            admins: row.admins,
        }
    }
}

/// A role to create or the new state of one: its name and what it grants.
#[derive(Debug, Clone)]
pub struct RoleInput {
    pub name: String,
    /// Every resource; `resources` is then ignored.
    pub all_resources: bool,
    pub resources: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct RoleService {
    store: Store,
    tree: Arc<ResourceTree>,
}

impl RoleService {
    pub fn new(store: Store, tree: Arc<ResourceTree>) -> Self {
        Self { store, tree }
    }

    pub fn tree(&self) -> &ResourceTree {
        &self.tree
    }

    /// Every role, by name.
    pub async fn list(&self) -> Result<Vec<Role>, ServiceError> {
        Ok(self
            .store
            .list_roles()
            .await?
            .into_iter()
            .map(Role::from_row)
            .collect())
    }

    /// The role with this id.
    pub async fn get(&self, id: i64) -> Result<Role, ServiceError> {
        self.store
            .role(id)
            .await?
            .map(Role::from_row)
            .ok_or_else(|| not_found(&id.to_string()))
    }

    /// The role with this name (whatever the case of its letters).
    pub async fn by_name(&self, name: &str) -> Result<Role, ServiceError> {
        self.store
            .role_by_name(name)
            .await?
            .map(Role::from_row)
            .ok_or_else(|| ServiceError::NotFound(format!("The role \"{name}\" doesn't exist.")))
    }

    /// Creates a role.
    pub async fn create(&self, input: &RoleInput) -> Result<Role, ServiceError> {
        let (name, grants) = self.checked(input)?;
        match self
            .store
            .save_role(None, &name, &grants.to_rules())
            .await?
        {
            RoleSave::Saved(id) => self.get(id).await,
            RoleSave::NameTaken => Err(name_taken(&name)),
            RoleSave::NotFound => Err(ServiceError::Invalid("the role was not created".into())),
        }
    }

    /// Replaces a role's name and grants. The built-in role cannot change.
    pub async fn update(&self, id: i64, input: &RoleInput) -> Result<Role, ServiceError> {
        let current = self.get(id).await?;
        let (name, grants) = self.checked(input)?;
        if current.built_in() && (name != current.name || grants != Grants::All) {
            return Err(built_in());
        }
        if !current.built_in() && name.eq_ignore_ascii_case(ADMINISTRATORS) {
            return Err(name_taken(&name));
        }
        match self
            .store
            .save_role(Some(id), &name, &grants.to_rules())
            .await?
        {
            RoleSave::Saved(id) => self.get(id).await,
            RoleSave::NameTaken => Err(name_taken(&name)),
            RoleSave::NotFound => Err(not_found(&id.to_string())),
        }
    }

    /// Deletes a role no admin holds. Answers the role as it was.
    pub async fn delete(&self, id: i64) -> Result<Role, ServiceError> {
        let role = self.get(id).await?;
        if role.built_in() {
            return Err(built_in());
        }
        match self.store.delete_role(id).await? {
            RoleDeletion::Deleted => Ok(role),
            RoleDeletion::NotFound => Err(not_found(&id.to_string())),
            RoleDeletion::Held(n) => Err(ServiceError::Conflict(format!(
                "The role \"{}\" can't be deleted: {n} admin user{} {} it. Give {} another role first.",
                role.name,
                if n == 1 { "" } else { "s" },
                if n == 1 { "holds" } else { "hold" },
                if n == 1 { "them" } else { "each" },
            ))),
        }
    }

    /// Gives an admin a role, or takes it away (`None`: they can no longer sign in).
    pub async fn assign(&self, admin_id: i64, role_id: Option<i64>) -> Result<(), ServiceError> {
        match self.store.set_admin_role(admin_id, role_id).await? {
            RoleAssignment::Set => Ok(()),
            RoleAssignment::NoSuchAdmin => Err(ServiceError::NotFound(format!(
                "The admin user with ID \"{admin_id}\" doesn't exist."
            ))),
            RoleAssignment::NoSuchRole => Err(not_found(
                &role_id.map(|r| r.to_string()).unwrap_or_default(),
            )),
        }
    }

    /// The role an admin holds, if any.
    pub async fn of_admin(&self, admin_id: i64) -> Result<Option<Role>, ServiceError> {
        Ok(self.store.admin_role(admin_id).await?.map(|r| Role {
            id: r.id,
            name: r.name,
            grants: Grants::from_rules(r.rules),
            admins: 0,
        }))
    }

    /// The role name of every admin who holds one, by admin id.
    pub async fn names_by_admin(
        &self,
    ) -> Result<std::collections::HashMap<i64, String>, ServiceError> {
        Ok(self.store.admin_role_names().await?)
    }

    /// The trimmed name and the resolved grants of an input, or why not.
    fn checked(&self, input: &RoleInput) -> Result<(String, Grants), ServiceError> {
        let name = input.name.trim();
        if name.is_empty() {
            return Err(FieldError::required("name").into());
        }
        if name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
            return Err(FieldError::invalid(
                "name",
                name,
                format!("is at most {NAME_MAX} characters, without control characters"),
            )
            .into());
        }
        let grants = if input.all_resources {
            Grants::All
        } else {
            self.tree
                .grant(input.resources.iter().map(String::as_str))
                .map_err(|e| FieldError::invalid("resources", &e.0, "is not an ACL resource"))?
        };
        Ok((name.to_owned(), grants))
    }
}

fn not_found(id: &str) -> ServiceError {
    ServiceError::NotFound(format!("The role with ID \"{id}\" doesn't exist."))
}

fn name_taken(name: &str) -> ServiceError {
    ServiceError::Conflict(format!("A role named \"{name}\" already exists."))
}

fn built_in() -> ServiceError {
    ServiceError::Invalid(format!(
        "The role \"{ADMINISTRATORS}\" is built in: it grants every resource and can't be renamed, changed or deleted."
    ))
}
