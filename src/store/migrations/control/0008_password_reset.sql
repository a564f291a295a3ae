-- Emailed links serve two purposes: magic sign-in and password reset.
ALTER TABLE magic_links ADD COLUMN purpose TEXT NOT NULL DEFAULT 'sign_in'
    CHECK (purpose IN ('sign_in', 'password_reset'));
