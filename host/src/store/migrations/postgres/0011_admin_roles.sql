-- Admin roles (Magento's user roles): a group role ('G') is named once, whatever the case of
-- its letters; an admin's user role ('U', user_type 2) points at its group role by parent_id.
CREATE UNIQUE INDEX authorization_role_group_name ON authorization_role (lower(role_name))
    WHERE role_type = 'G';
CREATE INDEX authorization_role_parent ON authorization_role (parent_id);
