-- Revoking everything a user was granted (account deleted, password
-- reset) looks tokens up by subject.
CREATE INDEX kavach_oauth_token_subject_idx ON kavach_oauth_token (subject) WHERE subject <> '';
