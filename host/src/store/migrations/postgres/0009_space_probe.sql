-- Where /readyz tries a write that needs new space while writes fail for lack of it (see
-- store/space.rs); empty otherwise.
CREATE TABLE space_probe (
    id  BIGSERIAL PRIMARY KEY,
    pad BYTEA NOT NULL
);
