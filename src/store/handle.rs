//! What code above the store holds instead of a SQLite connection. Store
//! functions take `&dyn Sql` (a read) or `&dyn SqlTx` (a write transaction)
//! and open it with `TOKEN`, which only `store/` can name: the domain passes
//! handles along (a `TenantTx`, the closure argument of `read` / `write`)
//! but can never reach the connection behind one, so every statement is
//! one of the store's named functions (issue 19; `scripts/check-layers`,
//! rule `raw-conn`, keeps `rusqlite`'s types out of the domain).

use rusqlite::{Connection, Transaction};

/// Leave to open a handle: only `store/` can make one.
pub struct Token(());

/// The one `Token`, for the store's own functions.
pub(in crate::store) const TOKEN: Token = Token(());

mod sealed {
    pub trait Sealed {}
}

/// Something a store function can read through: a connection, a
/// transaction, a workspace's `TenantTx`.
pub trait Sql: sealed::Sealed {
    fn conn(&self, _: Token) -> &Connection;
}

/// Something a store function can write through: an open transaction.
pub trait SqlTx: Sql {
    fn tx(&self, _: Token) -> &Transaction<'_>;
}

impl sealed::Sealed for Connection {}
impl Sql for Connection {
    fn conn(&self, _: Token) -> &Connection {
        self
    }
}

impl sealed::Sealed for Transaction<'_> {}
impl Sql for Transaction<'_> {
    fn conn(&self, _: Token) -> &Connection {
        self
    }
}
impl SqlTx for Transaction<'_> {
    fn tx(&self, _: Token) -> &Transaction<'_> {
        self
    }
}

impl sealed::Sealed for super::tenant::TenantTx<'_> {}
impl Sql for super::tenant::TenantTx<'_> {
    fn conn(&self, _: Token) -> &Connection {
        self.tx
    }
}
impl SqlTx for super::tenant::TenantTx<'_> {
    fn tx(&self, _: Token) -> &Transaction<'_> {
        self.tx
    }
}

/// A database file opened on its own, outside any `Db`: a backup's copy, a
/// move bundle, a standby's file. Read and changed, like any handle, only
/// through store functions.
pub struct Detached(Connection);

impl Detached {
    /// Opens `path` read-only.
    pub fn read_only(path: impl AsRef<std::path::Path>) -> crate::error::Result<Self> {
        Ok(Self(Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?))
    }

    /// Opens `path` for reading and writing, creating it if it is missing.
    pub fn read_write(path: impl AsRef<std::path::Path>) -> crate::error::Result<Self> {
        Ok(Self(Connection::open(path)?))
    }

    /// A fresh in-memory database with `migrations` applied (unit tests).
    #[cfg(test)]
    pub fn memory(migrations: &[super::migrations::Migration]) -> crate::error::Result<Self> {
        let mut c = Connection::open_in_memory()?;
        super::migrations::apply(&mut c, migrations)?;
        Ok(Self(c))
    }

    /// Runs `f` in one transaction, committed when it returns `Ok`.
    pub fn write<T>(
        &mut self,
        f: impl FnOnce(&dyn SqlTx) -> crate::error::Result<T>,
    ) -> crate::error::Result<T> {
        let tx = self.0.transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

impl sealed::Sealed for Detached {}
impl Sql for Detached {
    fn conn(&self, _: Token) -> &Connection {
        &self.0
    }
}
