//! Conversation sessions: the `Session` contract on `MemorySession`.

use std::sync::Arc;

use serde_json::json;
use stroma::{Item, MemorySession, Session};

fn msg(n: usize) -> Item {
    json!({"role": "user", "content": format!("message {n}")})
}

/// Every method of the contract, on an empty session.
async fn check_contract(session: &dyn Session) {
    // Empty.
    assert_eq!(session.get_items(None).await.unwrap(), Vec::<Item>::new());
    assert_eq!(
        session.get_items(Some(3)).await.unwrap(),
        Vec::<Item>::new()
    );
    assert_eq!(session.pop_item().await.unwrap(), None);

    // Appended in order, read oldest first, across several calls.
    session.add_items(vec![msg(0), msg(1)]).await.unwrap();
    session.add_items(vec![]).await.unwrap();
    session
        .add_items(vec![msg(2), msg(3), msg(4)])
        .await
        .unwrap();
    let all: Vec<Item> = (0..5).map(msg).collect();
    assert_eq!(session.get_items(None).await.unwrap(), all);

    // `limit`: the most recent ones, still oldest first.
    assert_eq!(
        session.get_items(Some(2)).await.unwrap(),
        vec![msg(3), msg(4)]
    );
    assert_eq!(
        session.get_items(Some(0)).await.unwrap(),
        Vec::<Item>::new()
    );
    assert_eq!(session.get_items(Some(5)).await.unwrap(), all);
    assert_eq!(session.get_items(Some(usize::MAX)).await.unwrap(), all);

    // `pop_item`: the most recent, removed; a later add goes after the rest.
    assert_eq!(session.pop_item().await.unwrap(), Some(msg(4)));
    assert_eq!(session.pop_item().await.unwrap(), Some(msg(3)));
    session.add_items(vec![msg(9)]).await.unwrap();
    assert_eq!(
        session.get_items(None).await.unwrap(),
        vec![msg(0), msg(1), msg(2), msg(9)]
    );

    // Any JSON value is an item, stored as given.
    let odd = vec![
        json!(null),
        json!(1.5),
        json!("text with \"quotes\" and \u{e9}"),
        json!([1, {"a": []}]),
    ];
    session.add_items(odd.clone()).await.unwrap();
    assert_eq!(session.get_items(Some(4)).await.unwrap(), odd);

    // `clear`: empty again, and usable.
    session.clear().await.unwrap();
    assert_eq!(session.get_items(None).await.unwrap(), Vec::<Item>::new());
    assert_eq!(session.pop_item().await.unwrap(), None);
    session.add_items(vec![msg(7)]).await.unwrap();
    assert_eq!(session.get_items(None).await.unwrap(), vec![msg(7)]);
    assert_eq!(session.pop_item().await.unwrap(), Some(msg(7)));
    assert_eq!(session.pop_item().await.unwrap(), None);
}

#[tokio::test]
async fn memory_session_keeps_the_contract() {
    check_contract(&MemorySession::new()).await;
}

#[tokio::test]
async fn memory_session_clones_share_items() {
    let session = MemorySession::with_items(vec![msg(0)]);
    let clone = session.clone();
    clone.add_items(vec![msg(1)]).await.unwrap();
    assert_eq!(session.get_items(None).await.unwrap(), vec![msg(0), msg(1)]);

    // Behind `Arc<dyn Session>` as a run would hold it.
    let shared: Arc<dyn Session> = Arc::new(session);
    assert_eq!(shared.pop_item().await.unwrap(), Some(msg(1)));
    assert_eq!(clone.get_items(None).await.unwrap(), vec![msg(0)]);
}
