//! Ledger commands: `nexus account`, `nexus orchestrator`, `nexus provider`. The node named
//! by `--node` signs each transaction with its account key and waits until it is included.

use anyhow::{anyhow, bail, Result};
use nexus_storage::ledger::{TxKind, BPS};
use nexus_storage::PublicKey;

use crate::units::ByteSize;
use nexus_api::client::NodeClient;
use nexus_api::types::{AccountView, Status, TxReceipt};

/// `nexus account …`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum AccountCommand {
    /// Show an account's balance (the node's own by default).
    Balance {
        /// Account key (hex).
        key: Option<PublicKey>,
    },
    /// Send tokens from the node's account.
    Transfer {
        /// Recipient account key (hex).
        #[arg(long)]
        to: PublicKey,
        /// Amount in base units.
        #[arg(long)]
        amount: u64,
    },
}

/// `nexus orchestrator …`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum OrchestratorCommand {
    /// Make the node's account an orchestrator, bonding `stake`.
    Register {
        /// Stake to bond.
        #[arg(long)]
        stake: u64,
        /// Share of storage fees kept, in percent (the rest goes to providers).
        #[arg(long)]
        commission: f64,
    },
    /// Bond more stake.
    AddStake {
        /// Amount.
        #[arg(long)]
        amount: u64,
    },
    /// Start returning stake to the balance (after the unbonding period).
    Unbond {
        /// Amount.
        #[arg(long)]
        amount: u64,
    },
    /// Providers, stored bytes, challenge record and stake (the node's own by default).
    Status {
        /// Orchestrator key (hex).
        key: Option<PublicKey>,
    },
}

/// `nexus provider …`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ProviderCommand {
    /// Offer this node's disk to an orchestrator.
    Join {
        /// The orchestrator's account key (hex).
        #[arg(long)]
        orchestrator: PublicKey,
        /// Disk offered, e.g. `500GiB`.
        #[arg(long)]
        capacity: ByteSize,
    },
    /// Leave the orchestrator (its shards move to its other providers).
    Leave,
    /// Orchestrator, capacity, use and failures (the node's own by default).
    Status {
        /// Provider key (hex).
        key: Option<PublicKey>,
    },
}

async fn own_status(client: &NodeClient) -> Result<Status> {
    client.get_json("/v1/status").await
}

async fn account_view(client: &NodeClient, key: Option<PublicKey>) -> Result<AccountView> {
    let key = match key {
        Some(k) => k,
        None => own_status(client).await?.account,
    };
    client.get_json(&format!("/v1/accounts/{key}")).await
}

/// Has the node sign `kind` with its account and waits until a block includes it.
pub(crate) async fn send(client: &NodeClient, kind: TxKind) -> Result<TxReceipt> {
    let url = client.url("/v1/transactions")?;
    let response = client
        .send(|http| http.post(url.clone()).json(&kind))
        .await?;
    response
        .json()
        .await
        .map_err(|e| anyhow!("malformed answer from the node: {e}"))
}

fn included(r: &TxReceipt) {
    out!("included in block {} (transaction #{})", r.height, r.index);
}

/// Runs `nexus account …`.
pub(crate) async fn account(client: &NodeClient, cmd: AccountCommand) -> Result<()> {
    match cmd {
        AccountCommand::Balance { key } => {
            let v = account_view(client, key).await?;
            out!("account:  {}", v.key);
            out!("balance:  {}", v.account.balance);
            out!("nonce:    {}", v.account.nonce);
        }
        AccountCommand::Transfer { to, amount } => {
            included(&send(client, TxKind::Transfer { to, amount }).await?)
        }
    }
    Ok(())
}

/// Runs `nexus orchestrator …`.
pub(crate) async fn orchestrator(client: &NodeClient, cmd: OrchestratorCommand) -> Result<()> {
    let kind = match cmd {
        OrchestratorCommand::Register { stake, commission } => {
            if !(0.0..=100.0).contains(&commission) {
                bail!("--commission is a percentage between 0 and 100");
            }
            let commission_bps = (commission * BPS as f64 / 100.0).round() as u64;
            TxKind::RegisterOrchestrator {
                stake,
                commission_bps,
            }
        }
        OrchestratorCommand::AddStake { amount } => TxKind::AddStake { amount },
        OrchestratorCommand::Unbond { amount } => TxKind::Unbond { amount },
        OrchestratorCommand::Status { key } => {
            let v = account_view(client, key).await?;
            let o = v
                .orchestrator
                .ok_or_else(|| anyhow!("{} is not an orchestrator", v.key))?;
            out!("orchestrator: {}", v.key);
            out!("stake:        {} (slashed so far: {})", o.stake, o.slashed);
            for u in &o.unbonding {
                out!("unbonding:    {} released at epoch {}", u.amount, u.release);
            }
            out!(
                "commission:   {:.2} %",
                o.commission_bps as f64 * 100.0 / BPS as f64
            );
            out!(
                "stored:       {} in shards on its providers",
                ByteSize(v.stored_bytes)
            );
            out!(
                "challenges:   {} passed, {} failed",
                o.challenges_passed,
                o.challenges_failed
            );
            out!("providers:    {}", o.providers.len());
            for p in &o.providers {
                out!("              {p}");
            }
            return Ok(());
        }
    };
    included(&send(client, kind).await?);
    Ok(())
}

/// Runs `nexus provider …`.
pub(crate) async fn provider(client: &NodeClient, cmd: ProviderCommand) -> Result<()> {
    let kind = match cmd {
        ProviderCommand::Join {
            orchestrator,
            capacity,
        } => {
            let node = own_status(client).await?.peer_id.into_bytes();
            TxKind::JoinOrchestrator {
                orchestrator,
                capacity: capacity.0,
                node,
            }
        }
        ProviderCommand::Leave => TxKind::LeaveOrchestrator,
        ProviderCommand::Status { key } => {
            let v = account_view(client, key).await?;
            let p = v
                .provider
                .ok_or_else(|| anyhow!("{} is not a provider", v.key))?;
            out!("provider:     {}", v.key);
            out!("orchestrator: {}", p.orchestrator);
            out!("capacity:     {}", ByteSize(p.capacity));
            out!("used:         {}", ByteSize(p.used));
            out!("failures:     {}", p.failures);
            out!("node:         {}", String::from_utf8_lossy(&p.node));
            return Ok(());
        }
    };
    included(&send(client, kind).await?);
    Ok(())
}
