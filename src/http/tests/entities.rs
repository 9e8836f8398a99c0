//! `/v1/entities` routes: checkpoint, entity snapshot read, crossed lookups.

use serde_json::json;

use super::Api;

#[tokio::test]
async fn checkpoint_invalidates_the_entity_while_old_snapshots_stay_readable() {
    let api = Api::new();
    api.put_ok("/v1/kv/player:42/pos", "1,1").await;
    let before = api.put_ok("/v1/kv/player:42/score", "10").await;
    api.put_ok("/v1/kv/player:43/pos", "other").await;

    let r = api
        .post_json(
            "/v1/entities/player:42/checkpoint",
            &json!({"name": "gate-1", "data": "lap 1"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let cp = r.json();
    assert_eq!(cp["epoch"], 1);
    let cp_ts = cp["ts"].as_u64().unwrap();
    assert!(cp_ts > before);

    let now = api.get("/v1/entities/player:42").await.json();
    assert_eq!(now["epoch"], 1);
    assert_eq!(now["items"], json!([]));
    assert_eq!(now["more"], false);

    let old = api
        .get(&format!("/v1/entities/player:42?at={before}"))
        .await
        .json();
    assert_eq!(old["epoch"], 0);
    let items = old["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["key"], "player:42/pos");
    assert_eq!(items[0]["value"], "1,1");
    assert_eq!(items[0]["epoch"], 0);
    assert_eq!(items[1]["key"], "player:42/score");

    assert_eq!(api.get("/v1/kv/player:42/pos").await.status, 404);
    let g = api.get(&format!("/v1/kv/player:42/pos?at={before}")).await;
    assert_eq!(&g.body[..], b"1,1");
    // Other entities are untouched.
    assert_eq!(&api.get("/v1/kv/player:43/pos").await.body[..], b"other");

    // New writes land in the new epoch; limit pages the entity read.
    api.put_ok("/v1/kv/player:42/pos", "2,2").await;
    api.put_ok("/v1/kv/player:42/score", "0").await;
    let page = api.get("/v1/entities/player:42?limit=1").await.json();
    assert_eq!(page["items"][0]["epoch"], 1);
    assert_eq!(page["more"], true);
}

#[tokio::test]
async fn crossed_lookup_answers_200_with_data_or_404() {
    let api = Api::new();
    let r = api.get("/v1/entities/player:7/checkpoints/gate-1").await;
    assert_eq!(r.err(), (404, "checkpoint_not_found".into()));
    let before = api.put_ok("/v1/kv/player:7/pos", "x").await;
    let cp = api
        .post_json(
            "/v1/entities/player:7/checkpoint",
            &json!({"name": "gate-1", "data": "t=12.5"}),
        )
        .await
        .json();
    let r = api.get("/v1/entities/player:7/checkpoints/gate-1").await;
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["epoch"], cp["epoch"]);
    assert_eq!(body["ts"], cp["ts"]);
    assert_eq!(body["data"], "t=12.5");
    // Not crossed yet at an earlier snapshot.
    let r = api
        .get(&format!(
            "/v1/entities/player:7/checkpoints/gate-1?at={before}"
        ))
        .await;
    assert_eq!(r.err(), (404, "checkpoint_not_found".into()));
    // Other names and entities are not crossed.
    let r = api.get("/v1/entities/player:7/checkpoints/gate-2").await;
    assert_eq!(r.status, 404);
    let r = api.get("/v1/entities/player:8/checkpoints/gate-1").await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn checkpoint_data_may_be_binary_and_names_percent_encoded() {
    let api = Api::new();
    let r = api
        .post_json(
            "/v1/entities/p%201/checkpoint",
            &json!({"name_b64": "Z2F0ZSAx", "data_b64": "AP8="}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let body = api
        .get("/v1/entities/p%201/checkpoints/gate%201")
        .await
        .json();
    assert_eq!(body["data_b64"], "AP8=");
    assert!(body.get("data").is_none());
}

#[tokio::test]
async fn checkpoint_epoch_fence() {
    let api = Api::new();
    let r = api
        .post_json(
            "/v1/entities/e/checkpoint",
            &json!({"name": "a", "epoch": 0}),
        )
        .await;
    assert_eq!(r.json()["epoch"], 1);
    let r = api
        .post_json(
            "/v1/entities/e/checkpoint",
            &json!({"name": "b", "epoch": 0}),
        )
        .await;
    assert_eq!(r.err(), (409, "stale_epoch".into()));
    assert_eq!(r.json()["error"]["current_epoch"], 1);
    assert_eq!(
        api.get("/v1/entities/e/checkpoints/b").await.status,
        404,
        "a refused checkpoint records no crossing"
    );
}
