//! A flat `pipeline![]` of 100 nodes over 101 distinct types: it must compile
//! and run. `.ci/compile-budget` times this file's build, so a change that
//! nests types per node (and so blows up compile time or memory) fails CI.

use stroma::prelude::*;

/// For each `node: In -> Out`, declares the type `Out` and a node that maps
/// `In(n)` to `Out(n + 1)`.
macro_rules! chain {
    ($($node:ident: $input:ident -> $output:ident,)*) => {
        $(
            #[derive(Clone, Debug)]
            struct $output(u64);

            #[node]
            async fn $node(value: $input) -> $output {
                $output(value.0 + 1)
            }
        )*
    };
}

#[derive(Clone, Debug)]
struct T0(u64);

chain! {
    n0: T0 -> T1,
    n1: T1 -> T2,
    n2: T2 -> T3,
    n3: T3 -> T4,
    n4: T4 -> T5,
    n5: T5 -> T6,
    n6: T6 -> T7,
    n7: T7 -> T8,
    n8: T8 -> T9,
    n9: T9 -> T10,
    n10: T10 -> T11,
    n11: T11 -> T12,
    n12: T12 -> T13,
    n13: T13 -> T14,
    n14: T14 -> T15,
    n15: T15 -> T16,
    n16: T16 -> T17,
    n17: T17 -> T18,
    n18: T18 -> T19,
    n19: T19 -> T20,
    n20: T20 -> T21,
    n21: T21 -> T22,
    n22: T22 -> T23,
    n23: T23 -> T24,
    n24: T24 -> T25,
    n25: T25 -> T26,
    n26: T26 -> T27,
    n27: T27 -> T28,
    n28: T28 -> T29,
    n29: T29 -> T30,
    n30: T30 -> T31,
    n31: T31 -> T32,
    n32: T32 -> T33,
    n33: T33 -> T34,
    n34: T34 -> T35,
    n35: T35 -> T36,
    n36: T36 -> T37,
    n37: T37 -> T38,
    n38: T38 -> T39,
    n39: T39 -> T40,
    n40: T40 -> T41,
    n41: T41 -> T42,
    n42: T42 -> T43,
    n43: T43 -> T44,
    n44: T44 -> T45,
    n45: T45 -> T46,
    n46: T46 -> T47,
    n47: T47 -> T48,
    n48: T48 -> T49,
    n49: T49 -> T50,
    n50: T50 -> T51,
    n51: T51 -> T52,
    n52: T52 -> T53,
    n53: T53 -> T54,
    n54: T54 -> T55,
    n55: T55 -> T56,
    n56: T56 -> T57,
    n57: T57 -> T58,
    n58: T58 -> T59,
    n59: T59 -> T60,
    n60: T60 -> T61,
    n61: T61 -> T62,
    n62: T62 -> T63,
    n63: T63 -> T64,
    n64: T64 -> T65,
    n65: T65 -> T66,
    n66: T66 -> T67,
    n67: T67 -> T68,
    n68: T68 -> T69,
    n69: T69 -> T70,
    n70: T70 -> T71,
    n71: T71 -> T72,
    n72: T72 -> T73,
    n73: T73 -> T74,
    n74: T74 -> T75,
    n75: T75 -> T76,
    n76: T76 -> T77,
    n77: T77 -> T78,
    n78: T78 -> T79,
    n79: T79 -> T80,
    n80: T80 -> T81,
    n81: T81 -> T82,
    n82: T82 -> T83,
    n83: T83 -> T84,
    n84: T84 -> T85,
    n85: T85 -> T86,
    n86: T86 -> T87,
    n87: T87 -> T88,
    n88: T88 -> T89,
    n89: T89 -> T90,
    n90: T90 -> T91,
    n91: T91 -> T92,
    n92: T92 -> T93,
    n93: T93 -> T94,
    n94: T94 -> T95,
    n95: T95 -> T96,
    n96: T96 -> T97,
    n97: T97 -> T98,
    n98: T98 -> T99,
    n99: T99 -> T100,
}

#[tokio::test]
async fn a_flat_pipeline_of_100_nodes_runs_every_node() {
    let p = pipeline![
        n0, n1, n2, n3, n4, n5, n6, n7, n8, n9, n10, n11, n12, n13, n14, n15, n16, n17, n18, n19,
        n20, n21, n22, n23, n24, n25, n26, n27, n28, n29, n30, n31, n32, n33, n34, n35, n36, n37,
        n38, n39, n40, n41, n42, n43, n44, n45, n46, n47, n48, n49, n50, n51, n52, n53, n54, n55,
        n56, n57, n58, n59, n60, n61, n62, n63, n64, n65, n66, n67, n68, n69, n70, n71, n72, n73,
        n74, n75, n76, n77, n78, n79, n80, n81, n82, n83, n84, n85, n86, n87, n88, n89, n90, n91,
        n92, n93, n94, n95, n96, n97, n98, n99
    ];
    let result = StromaRunner::quick().run(&p, T0(0)).await.unwrap();
    assert_eq!(result.final_state.0, 100);
    assert_eq!(result.records().len(), 100);
}
