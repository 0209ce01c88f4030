-- The nonce log without its index on the timestamp. A row's `seq` is now the microsecond of
-- its arrival or of its timestamp, whichever is later (and above every `seq` before it, see
-- store/nonces/sqlite.rs `next_seq`), so a row whose `seq` is below a time has a timestamp
-- before it: the nonce cleanup and the writer's start-up read go by ranges of `seq`, the
-- table's own key. The index cost every commit of nonces a second B-tree of random pages.
--
-- The rows already in the log keep their numbers (1, 2, 3 ...): the start-up read reads all of
-- them, and the cleanup deletes them by their timestamp as before, once out of the window.
DROP INDEX IF EXISTS oauth_nonce_timestamp;
