//! `corral members list|add|remove` and `corral leader transfer`: a table for people,
//! `--json` for scripts.

use corral_client::{ClusterClient, Members};

use crate::Output;

fn client(masters: &str) -> ClusterClient {
    ClusterClient::new(reqwest::Client::new(), masters)
}

pub(crate) async fn list(masters: &str, output: Output) -> anyhow::Result<()> {
    print_members(&client(masters).members().await?, output)
}

pub(crate) async fn add(
    masters: &str,
    node_id: u64,
    address: &str,
    output: Output,
) -> anyhow::Result<()> {
    if output == Output::Table {
        eprintln!("adding master {node_id} at {address}: it catches up as a learner, then votes");
    }
    print_members(&client(masters).add_member(node_id, address).await?, output)
}

pub(crate) async fn remove(masters: &str, node_id: u64, output: Output) -> anyhow::Result<()> {
    print_members(&client(masters).remove_member(node_id).await?, output)
}

pub(crate) async fn transfer(masters: &str, to: u64, output: Output) -> anyhow::Result<()> {
    let moved = client(masters).transfer_leader(to).await?;
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&moved)?),
        Output::Table => println!(
            "master {} leads in term {} (was master {}){}",
            moved.leader,
            moved.term,
            moved.from,
            match moved.leader_address {
                Some(address) => format!(", at {address}"),
                None => String::new(),
            }
        ),
    }
    Ok(())
}

fn print_members(members: &Members, output: Output) -> anyhow::Result<()> {
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(members)?);
        return Ok(());
    }
    print!("{}", table(members));
    Ok(())
}

fn table(members: &Members) -> String {
    let dash = || "-".to_owned();
    let rows: Vec<Vec<String>> = members
        .members
        .iter()
        .map(|member| {
            vec![
                member.node_id.to_string(),
                member.address.clone(),
                member.role.clone(),
                if member.up { "yes".to_owned() } else { "no".to_owned() },
                member.matched_index.map_or_else(dash, |index| index.to_string()),
                member.lag.map_or_else(dash, |lag| lag.to_string()),
            ]
        })
        .collect();
    let mut text = crate::audit::table(&["ID", "ADDRESS", "ROLE", "UP", "MATCHED", "LAG"], &rows);
    text.push_str(&format!("term {}, answered by master {}", members.term, members.node_id));
    if members.leader != Some(members.node_id) {
        text.push_str(" (not the leader: UP is only known for itself)");
    }
    text.push('\n');
    text
}
