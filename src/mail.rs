//! Outgoing mail over SMTP (lettre, rustls). Under `serve --dev` with no
//! SMTP host, messages are appended to an outbox file instead, so the demo
//! works without a mail server. Nothing is queued on disk: a message that
//! cannot be sent is an error for the request that wanted it.

use std::io::Write;
use std::path::PathBuf;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{Config, SmtpTls};
use crate::error::{Error, Result};

pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

enum Way {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
    Off,
}

pub struct Mailer {
    way: Way,
    from: String,
}

impl Mailer {
    pub fn from_config(cfg: &Config) -> Result<Self> {
        let m = &cfg.file.mail;
        let way = if !m.smtp_host.is_empty() {
            let builder = match m.smtp_tls {
                SmtpTls::Starttls => {
                    AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&m.smtp_host)
                        .map_err(|e| Error::Config(format!("key `mail.smtp_host`: {e}")))?
                }
                SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&m.smtp_host)
                    .map_err(|e| Error::Config(format!("key `mail.smtp_host`: {e}")))?,
                SmtpTls::None => {
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&m.smtp_host)
                }
            };
            let mut builder = builder
                .port(m.smtp_port)
                .timeout(Some(std::time::Duration::from_secs(15)));
            if !m.username.is_empty() {
                builder =
                    builder.credentials(Credentials::new(m.username.clone(), m.password.clone()));
            }
            Way::Smtp(builder.build())
        } else if cfg.dev {
            let path = if m.outbox_file.as_os_str().is_empty() {
                cfg.file.data_dir.join("dev-outbox.txt")
            } else {
                m.outbox_file.clone()
            };
            Way::Outbox(path)
        } else {
            Way::Off
        };
        m.from.parse::<Mailbox>().map_err(|_| {
            Error::Config("key `mail.from` is not an address like `Aura <aura@example.com>`".into())
        })?;
        Ok(Self {
            way,
            from: m.from.clone(),
        })
    }

    pub fn configured(&self) -> bool {
        !matches!(self.way, Way::Off)
    }

    pub async fn send(&self, mail: Mail) -> Result<()> {
        match &self.way {
            Way::Off => Err(Error::Unavailable(
                "mail is not configured: set [mail] smtp_host in the config",
            )),
            Way::Outbox(path) => {
                let text = format!(
                    "From: {}\nTo: {}\nSubject: {}\n\n{}\n----\n",
                    self.from, mail.to, mail.subject, mail.body
                );
                let path = path.clone();
                tokio::task::spawn_blocking(move || {
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)?;
                    f.write_all(text.as_bytes())?;
                    f.sync_all()
                })
                .await
                .map_err(|e| Error::internal(format!("outbox task: {e}")))??;
                Ok(())
            }
            Way::Smtp(t) => {
                let to: Mailbox = mail
                    .to
                    .parse()
                    .map_err(|_| Error::field("email", "is not an address mail can go to"))?;
                let from: Mailbox = self
                    .from
                    .parse()
                    .map_err(|_| Error::Config("key `mail.from` is not an address".into()))?;
                let msg = Message::builder()
                    .from(from)
                    .to(to)
                    .subject(mail.subject)
                    .body(mail.body)
                    .map_err(|e| Error::internal(format!("building mail: {e}")))?;
                t.send(msg).await.map_err(|e| {
                    tracing::warn!(error = %e, "SMTP send failed");
                    Error::Unavailable(
                        "the mail server did not accept the message; try again later",
                    )
                })?;
                Ok(())
            }
        }
    }
}
