//! The quickstart: three nodes, one shared resource, one run.
//!
//! `cargo run --example quickstart`

use stroma::prelude::*;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Order {
    id: u32,
    items: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Priced {
    id: u32,
    total_cents: u64,
}

/// A resource every run shares: prices by item name.
struct PriceList(Vec<(&'static str, u64)>);

/// Looks up each item's price in the shared price list.
#[node(input = Order, output = Priced)]
async fn price(order: Order, ctx: &Context) -> Result<Priced, NodeError> {
    let prices = ctx.require::<PriceList>()?;
    let mut total_cents = 0;
    for item in &order.items {
        let (_, cents) = prices
            .0
            .iter()
            .find(|(name, _)| name == item)
            .ok_or_else(|| NodeError::msg(format!("no price for `{item}`")))?;
        total_cents += cents;
    }
    Ok(Priced {
        id: order.id,
        total_cents,
    })
}

/// Takes 10% off orders over 20.00.
#[node]
async fn discount(mut priced: Priced) -> Priced {
    if priced.total_cents > 2_000 {
        priced.total_cents -= priced.total_cents / 10;
    }
    priced
}

#[node]
async fn receipt(priced: Priced) -> String {
    format!(
        "order {}: {}.{:02}",
        priced.id,
        priced.total_cents / 100,
        priced.total_cents % 100
    )
}

#[tokio::main]
async fn main() -> Result<(), RunError> {
    let prices = PriceList(vec![("tea", 450), ("cake", 1_900), ("jam", 600)]);
    let runner = StromaRunner::quick().with_context(Context::new().with(prices));
    let checkout = pipeline![price, discount, receipt];

    let order = Order {
        id: 7,
        items: vec!["tea".into(), "cake".into()],
    };
    let result = runner.run(&checkout, order).await?;
    println!("{}", result.final_state);
    for record in result.records() {
        println!(
            "  {:<8} {:?} in {:?}",
            record.name, record.status, record.duration
        );
    }
    assert_eq!(result.final_state, "order 7: 21.15");
    assert_eq!(result.records().len(), 3);

    // A bad order fails its run with an error naming the node; the runner goes on.
    let bad = Order {
        id: 8,
        items: vec!["caviar".into()],
    };
    let err = runner.run(&checkout, bad).await.unwrap_err();
    println!("{err}");
    assert_eq!(
        err.to_string(),
        "node `price` failed: no price for `caviar`"
    );
    Ok(())
}
