//! The SQL the store runs, apart from the database that runs it: values in
//! ([`Val`]) and rows out ([`Row`]) are the same whatever the backend, and a
//! transaction ([`Tx`]) runs a statement written once. Statements use
//! numbered parameters (`?1`, `?2`…; one may be used twice) and only SQL
//! both SQLite and PostgreSQL take the same way: `ON CONFLICT … DO UPDATE`,
//! never `INSERT OR REPLACE`; integers are 64-bit, text is text. On
//! PostgreSQL `?N` becomes `$N` ([`pg_sql`]).

use anyhow::{bail, Context, Result};
use rusqlite::types::{ToSqlOutput, ValueRef};

/// A parameter or a column value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    /// SQL NULL.
    Null,
    /// A 64-bit integer.
    Int(i64),
    /// Text.
    Text(String),
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(v)
    }
}

impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(v.to_string())
    }
}

impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::Text(v)
    }
}

impl From<&String> for Val {
    fn from(v: &String) -> Val {
        Val::Text(v.clone())
    }
}

impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Val {
        v.map_or(Val::Null, Into::into)
    }
}

/// `vals![a, b]`: parameters for a statement, each through `Val::from`.
macro_rules! vals {
    ($($v:expr),* $(,)?) => { &[$($crate::state::db::Val::from($v)),*][..] };
}
pub(crate) use vals;

/// One result row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row(pub Vec<Val>);

impl Row {
    fn at(&self, i: usize) -> Result<&Val> {
        self.0.get(i).with_context(|| format!("no column {i} in the row"))
    }

    /// Column `i`, an integer.
    pub fn int(&self, i: usize) -> Result<i64> {
        match self.at(i)? {
            Val::Int(v) => Ok(*v),
            other => bail!("column {i}: expected an integer, found {other:?}"),
        }
    }

    /// Column `i`, an integer or NULL.
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        match self.at(i)? {
            Val::Null => Ok(None),
            _ => self.int(i).map(Some),
        }
    }

    /// Column `i`, text.
    pub fn text(&self, i: usize) -> Result<String> {
        match self.at(i)? {
            Val::Text(v) => Ok(v.clone()),
            other => bail!("column {i}: expected text, found {other:?}"),
        }
    }

    /// Column `i`, text or NULL.
    pub fn opt_text(&self, i: usize) -> Result<Option<String>> {
        match self.at(i)? {
            Val::Null => Ok(None),
            _ => self.text(i).map(Some),
        }
    }
}

impl rusqlite::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Val::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Val::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Val::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
        })
    }
}

fn lite_row(r: &rusqlite::Row) -> rusqlite::Result<Row> {
    let n = r.as_ref().column_count();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(match r.get_ref(i)? {
            ValueRef::Null => Val::Null,
            ValueRef::Integer(v) => Val::Int(v),
            ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Real(v) => Val::Int(v as i64),
            ValueRef::Blob(b) => Val::Text(String::from_utf8_lossy(b).into_owned()),
        });
    }
    Ok(Row(out))
}

impl postgres::types::ToSql for Val {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::Type;
        match self {
            Val::Null => Ok(postgres::types::IsNull::Yes),
            Val::Int(v) if *ty == Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
            Val::Int(v) if *ty == Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
            Val::Int(v) => v.to_sql(ty, out),
            Val::Text(v) => v.as_str().to_sql(ty, out),
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// A statement's `?N` parameters as PostgreSQL's `$N` (outside quotes).
pub fn pg_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    for c in sql.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => out.push('$'),
            _ => out.push(c),
        }
    }
    out
}

fn pg_row(r: &postgres::Row) -> Result<Row> {
    use postgres::types::Type;
    let mut out = Vec::with_capacity(r.len());
    for (i, col) in r.columns().iter().enumerate() {
        let t = col.type_();
        out.push(if *t == Type::INT8 {
            r.try_get::<_, Option<i64>>(i)?.map_or(Val::Null, Val::Int)
        } else if *t == Type::INT4 {
            r.try_get::<_, Option<i32>>(i)?.map_or(Val::Null, |v| Val::Int(v.into()))
        } else if *t == Type::INT2 {
            r.try_get::<_, Option<i16>>(i)?.map_or(Val::Null, |v| Val::Int(v.into()))
        } else {
            r.try_get::<_, Option<String>>(i)?.map_or(Val::Null, Val::Text)
        });
    }
    Ok(Row(out))
}

fn pg_params(params: &[Val]) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn postgres::types::ToSql + Sync)).collect()
}

/// A transaction (or, for reads, a connection) statements run in.
pub enum Tx<'a> {
    /// The embedded SQLite database.
    Lite(&'a rusqlite::Connection),
    /// A PostgreSQL transaction.
    Pg(postgres::Transaction<'a>),
}

impl Tx<'_> {
    /// Runs a statement; the rows it changed.
    pub fn exec(&mut self, sql: &str, params: &[Val]) -> Result<usize> {
        match self {
            Tx::Lite(c) => Ok(c.prepare_cached(sql)?.execute(rusqlite::params_from_iter(params))?),
            Tx::Pg(t) => Ok(t.execute(pg_sql(sql).as_str(), &pg_params(params))? as usize),
        }
    }

    /// Every row of a query.
    pub fn rows(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>> {
        match self {
            Tx::Lite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let rows = stmt.query_map(rusqlite::params_from_iter(params), lite_row)?;
                Ok(rows.collect::<rusqlite::Result<Vec<Row>>>()?)
            }
            Tx::Pg(t) => t.query(pg_sql(sql).as_str(), &pg_params(params))?.iter().map(pg_row).collect(),
        }
    }

    /// The first row of a query, if any.
    pub fn row(&mut self, sql: &str, params: &[Val]) -> Result<Option<Row>> {
        Ok(self.rows(sql, params)?.into_iter().next())
    }
}
