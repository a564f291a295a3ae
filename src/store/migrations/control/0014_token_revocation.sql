-- Why an API token was revoked, when the account's own event revoked it:
-- 'password_reset' or 'account_disabled' (a reset or an operator's disable
-- revokes the account's personal tokens; service-account tokens stay).
-- NULL: revoked by hand, or with a membership.
ALTER TABLE api_tokens ADD COLUMN revoked_reason TEXT
    CHECK (revoked_reason IN ('password_reset', 'account_disabled'));
