//! `nexus validator status`: consensus as a validator sees it.

use anyhow::Result;

use nexus_api::client::NodeClient;
use nexus_api::types::ValidatorView;

/// Subcommands of `nexus validator`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ValidatorCommand {
    /// Round, leader, last QC, finalized height, and this validator's votes and timeouts.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `nexus validator ...`.
pub(crate) async fn validator(client: &NodeClient, command: ValidatorCommand) -> Result<()> {
    let ValidatorCommand::Status { json } = command;
    let v: ValidatorView = client.get_json("/v1/validator").await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let e = &v.engine;
    let me = e.validator.map_or("- (observer)".into(), |k| k.to_string());
    out!("validator:     {me}");
    out!(
        "round:         {} (leader {}{})",
        e.round,
        e.leader,
        if Some(e.leader) == e.validator {
            ", this node"
        } else {
            ""
        }
    );
    out!(
        "last QC:       round {} on block {}",
        e.high_qc_round,
        e.high_qc_block
    );
    out!(
        "finalized:     height {} (last commit at round {})",
        v.finalized_height.map_or("-".into(), |h| h.to_string()),
        e.committed_round
    );
    out!(
        "pending:       {} blocks validated, not final",
        v.pending_blocks
    );
    let c = e.counters;
    out!(
        "signed:        {} proposals, {} votes, {} timeouts; {} rounds ended by timeout \
         certificates; {} conflicting messages seen",
        c.proposals,
        c.votes,
        c.timeouts,
        c.timeout_certificates,
        c.evidence
    );
    let show = |what: &str, s: Option<nexus_api::stats::Summary>| {
        if let Some(s) = s {
            out!(
                "{what}p50 {:.1} ms, p99 {:.1} ms over this node's last {} blocks",
                s.p50,
                s.p99,
                s.count
            );
        }
    };
    show("commit time:   ", v.commit_ms);
    show("build time:    ", v.build_ms);
    show("  with data:   ", v.build_with_data_ms);
    Ok(())
}
