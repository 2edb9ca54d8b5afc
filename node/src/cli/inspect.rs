//! `nexus inspect HEIGHT`: a block's extended data as a grid, one character per cell.

use anyhow::Result;

use nexus_api::client::NodeClient;
use nexus_api::types::GridView;

/// Options of `nexus inspect`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct InspectArgs {
    /// The block height.
    height: u64,
    /// Cells the node does not hold to sample from its peers.
    #[arg(long, default_value_t = 64)]
    samples: usize,
}

/// Prints the grid with a legend and counts.
pub(crate) async fn inspect(client: &NodeClient, args: InspectArgs) -> Result<()> {
    let view: GridView = client
        .get_json(&format!(
            "/v1/blocks/{}/cells?samples={}",
            args.height, args.samples
        ))
        .await?;
    out!(
        "block {}: {} bytes of payload, d = {}, {} rows x 128 cells, DataRoot {}",
        view.height,
        view.data_len,
        view.dims,
        view.rows.len(),
        view.root
    );
    if view.data_len == 0 {
        out!("the block carries no data: nothing to hold or sample");
        return Ok(());
    }
    out!("columns 0-63 are the rows' data, 64-127 their extension\n");
    let mut counts = [0usize; 4];
    for (i, row) in view.rows.iter().enumerate() {
        let drawn: String = row
            .chars()
            .map(|c| match c {
                'H' => {
                    counts[0] += 1;
                    '█'
                }
                'S' => {
                    counts[1] += 1;
                    '▓'
                }
                'M' => {
                    counts[2] += 1;
                    '✗'
                }
                _ => {
                    counts[3] += 1;
                    '·'
                }
            })
            .collect();
        out!("{i:>5} {drawn}");
    }
    out!(
        "\n█ held by this node: {}   ▓ sampled from peers, verified: {}   ✗ missing: {}   · not checked: {}",
        counts[0], counts[1], counts[2], counts[3]
    );
    Ok(())
}
