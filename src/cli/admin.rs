//! `aura user ...` and `aura workspace ...`: operator actions, audited with the
//! operator as actor. Output on stdout is meant for scripts.

use std::io::BufRead;
use std::process::ExitCode;

use super::{Global, UserCommand, WorkspaceCommand, load_config, open_state};
use crate::audit::{Actor, RequestMeta};
use crate::clock::rfc3339;
use crate::error::{Error, Result};
use crate::identity::users::{CreateUser, create_user};
use crate::workspace::{CreateWorkspace, add_member, create_workspace, list_all};

pub async fn user(g: &Global, cmd: UserCommand) -> Result<ExitCode> {
    let (email, name, platform_admin) = match cmd {
        UserCommand::Create {
            email,
            name,
            platform_admin,
            password_stdin: _,
        } => (email, name, platform_admin),
        UserCommand::Disable { email } => return set_disabled(g, &email, true).await,
        UserCommand::Enable { email } => return set_disabled(g, &email, false).await,
    };
    let password = read_password_stdin()?;
    let state = open_state(g, load_config(g)?, false)?;
    let id = create_user(
        &state.deps(),
        CreateUser {
            email,
            name,
            password,
            platform_admin,
        },
        Actor::Operator,
        &RequestMeta::cli(),
    )
    .await
    .map_err(explain)?;
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}

async fn set_disabled(g: &Global, email: &str, disabled: bool) -> Result<ExitCode> {
    let state = open_state(g, load_config(g)?, false)?;
    let keys = state.control.keys.clone();
    let e = email.to_owned();
    let user = state
        .control
        .db
        .read_async(move |c| crate::store::control::find_user_by_email(c, &keys, &e))
        .await?
        .ok_or_else(|| {
            Error::Usage(format!(
                "no account has the email {email}; check the spelling, or list members with \
                 `aura workspace list`"
            ))
        })?;
    let revoked = crate::identity::users::set_disabled(
        &state.deps(),
        user.id,
        disabled,
        Actor::Operator,
        &RequestMeta::cli(),
    )
    .await?;
    let word = if disabled { "disabled" } else { "enabled" };
    println!("{} {word}", user.id);
    if disabled {
        // What enabling the account later will not bring back.
        print!(
            "{}",
            crate::identity::api_tokens::describe_revoked(&revoked)
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn workspace(g: &Global, cmd: WorkspaceCommand) -> Result<ExitCode> {
    let state = open_state(g, load_config(g)?, false)?;
    match cmd {
        WorkspaceCommand::Create {
            name,
            owner,
            region,
        } => {
            let id = create_workspace(
                state.platform(),
                CreateWorkspace {
                    name,
                    owner_email: owner,
                    region,
                },
                Actor::Operator,
                &RequestMeta::cli(),
            )
            .await
            .map_err(explain)?;
            println!("{id}");
        }
        WorkspaceCommand::AddMember {
            workspace,
            email,
            role,
        } => {
            let ws = super::workspace_arg(&workspace)?;
            let role = role.parse().map_err(explain)?;
            let id = add_member(
                state.platform(),
                ws,
                &email,
                role,
                Actor::Operator,
                &RequestMeta::cli(),
            )
            .await
            .map_err(explain)?;
            println!("{id}");
        }
        WorkspaceCommand::Export {
            workspace,
            out,
            recipient,
        } => return super::export::run(&state, &workspace, out, recipient),
        WorkspaceCommand::List => {
            println!("ID\tNAME\tREGION\tSTATE\tCREATED");
            for w in list_all(&state.control).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    w.id,
                    w.name,
                    if w.region.is_empty() { "-" } else { &w.region },
                    w.state,
                    rfc3339(w.created_at)
                );
            }
        }
        // Deletion and moves: see cli/lifecycle.rs.
        other => return super::lifecycle::run(&state, other).await,
    }
    Ok(ExitCode::SUCCESS)
}

fn read_password_stdin() -> Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let pw = line.trim_end_matches(['\n', '\r']).to_owned();
    if pw.is_empty() {
        return Err(Error::Usage(
            "no password on stdin; pipe it in, e.g. `printf '%s' \"$PW\" | aura user create ... --password-stdin`".into(),
        ));
    }
    Ok(pw)
}

/// Validation errors read better as one line per field on a terminal.
pub(super) fn explain(e: Error) -> Error {
    match e {
        Error::Validation(errs) => Error::Usage(
            errs.iter()
                .map(|f| format!("--{}: {}", f.field, f.message))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        other => other,
    }
}
