"""The generation history: every reference form, per-user scope, and persistence across a reopen."""

from __future__ import annotations

from pathlib import Path

import pytest

from egaku.errors import UnknownImage
from tools.stores.history import Generation, History, Viewer


async def add(history: History, user: str, prompt: str, conversation: str = "c", **extra: object) -> Generation:
    fields: dict[str, object] = {
        "conversation": conversation, "user_id": user, "user_words": prompt, "prompt": prompt,
        "negative_prompt": None, "seed": 7, "width": 64, "height": 64, "steps": 2, "model": "tiny",
        "kind": "generate",
    }  # fmt: skip
    fields.update(extra)
    return await history.add(f"png:{prompt}".encode(), **fields)


async def test_a_reference_reaches_only_what_its_viewer_may_see(tmp_path: Path) -> None:
    history = await History.open(tmp_path / "h.sqlite", tmp_path / "files")
    drawn = await add(history, "alice", "a lighthouse in a storm")
    dm_upload = await add(history, "alice", "(uploaded image me.png)", "dm-alice", kind="upload", guild_id=None)
    nsfw = await add(history, "alice", "a figure study", "nsfw-room", nsfw=True)
    elsewhere_bob, elsewhere_alice = Viewer("bob", "other"), Viewer("alice", "other")
    assert [elsewhere_bob.may_see(g) for g in (drawn, dm_upload, nsfw)] == [False, False, False]
    assert [elsewhere_alice.may_see(g) for g in (drawn, dm_upload, nsfw)] == [True, False, False]
    assert Viewer("alice", "other", nsfw=True).may_see(nsfw) and Viewer("bob", "nsfw-room", nsfw=True).may_see(nsfw)
    assert Viewer("bob", "c").may_see(drawn) and Viewer("carol", "dm-alice").may_see(dm_upload)
    for ref in (drawn.id, "last", "first", "lighthouse"):
        with pytest.raises(UnknownImage) as refused:
            await history.resolve(ref, elsewhere_bob)
        assert refused.value.user_text == "I can't find that picture here. Reply to it, or give its id."
    assert (await history.resolve(drawn.id, elsewhere_alice)).id == drawn.id
    with pytest.raises(UnknownImage):
        await history.resolve(dm_upload.id, elsewhere_alice)
    assert (await history.get(nsfw.id)) == nsfw  # stored and read back with its flag
    await history.close()


async def test_every_reference_form_and_a_restart(tmp_path: Path) -> None:
    history = await History.open(tmp_path / "h.sqlite", tmp_path / "files")
    king = await add(history, "alice", "a squirrel king on a mossy throne")
    night = await add(history, "alice", "a squirrel king on a mossy throne at night", parent_id=king.id)
    fox = await add(history, "alice", "a red fox in fresh snow")
    bobs = await add(history, "bob", "a lighthouse in a storm")
    await history.attach_message([night.id], "555")
    await history.close()

    history = await History.open(tmp_path / "h.sqlite", tmp_path / "files")  # a restart
    resolve = history.resolve
    assert (await resolve("last", Viewer("alice", "c"))).id == fox.id
    assert (await resolve("", Viewer("bob", "c"))).id == bobs.id  # each user has their own "last"
    assert (await resolve(king.id, Viewer("alice", "c"))).id == king.id
    assert (await resolve(f"#{night.id}", Viewer("bob", "c"))).id == night.id  # ids work for anyone
    assert (await resolve("the second one", Viewer("alice", "c"))).id == night.id
    assert (await resolve("2nd", Viewer("alice", "c"))).id == night.id
    assert (await resolve("first", Viewer("alice", "c"))).id == king.id
    assert (await resolve("二枚目", Viewer("alice", "c"))).id == night.id
    assert (await resolve("the fox one", Viewer("alice", "c"))).id == fox.id
    assert (await resolve("the squirrel-king one", Viewer("alice", "c"))).id == night.id  # newest of equals
    assert (await resolve("reply", Viewer("bob", "c", replied_message_id="555"))).id == night.id
    assert (await resolve("last", Viewer("alice", "c", replied_message_id="555"))).id == night.id
    assert history.png(fox) == b"png:a red fox in fresh snow"
    for bad in ("the dragon one", "fifth"):
        with pytest.raises(UnknownImage):
            await resolve(bad, Viewer("alice", "c"))
    with pytest.raises(UnknownImage):
        await resolve("last", Viewer("alice", "other-conversation"))
    await history.close()


async def test_files_are_stored_once_by_content_hash(tmp_path: Path) -> None:
    history = await History.open(tmp_path / "h.sqlite", tmp_path / "files")
    a = await add(history, "alice", "same")
    b = await add(history, "bob", "same")
    assert a.file == b.file and a.id != b.id
    assert len(list((tmp_path / "files").rglob("*.png"))) == 1
    assert a.line(1).startswith(f"#1 id={a.id} (generate): same")
    await history.close()


async def test_a_caption_is_kept_shown_to_the_model_and_matched(tmp_path: Path) -> None:
    history = await History.open(tmp_path / "h.sqlite", tmp_path / "files")
    upload = await add(history, "alice", "(uploaded image cat.jpg)", kind="upload", steps=0, model="")
    await history.set_caption(upload.id, "a grey tabby cat sleeping on a windowsill")
    await history.close()
    history = await History.open(tmp_path / "h.sqlite", tmp_path / "files")
    [kept] = await history.mine("c", "alice")
    assert kept.caption == "a grey tabby cat sleeping on a windowsill"
    assert kept.line(1) == (
        f"#1 id={upload.id} (upload): (uploaded image cat.jpg); it shows: a grey tabby cat sleeping on a windowsill"
    )
    assert (await history.resolve("the tabby one", Viewer("alice", "c"))).id == upload.id
    await history.close()


async def test_a_history_from_before_captions_and_best_of_gains_the_columns(tmp_path: Path) -> None:
    import aiosqlite

    from tools.stores.history import ADDED_COLUMNS, SCHEMA

    old_schema = SCHEMA
    for column, kind in ADDED_COLUMNS.items():
        old_schema = old_schema.replace(f",\n    {column} {kind}", "")
    assert not any(column in old_schema for column in ADDED_COLUMNS)
    async with aiosqlite.connect(tmp_path / "h.sqlite") as db:
        await db.executescript(old_schema)
        await db.execute(
            "INSERT INTO generations VALUES ('abcd', 'c', 'alice', NULL, NULL, NULL, 'a fox', 'a fox', NULL, 7, 64, 64,"
            " 2, 'tiny', NULL, 'generate', 'x.png', 1.0)"
        )
        await db.commit()
    history = await History.open(tmp_path / "h.sqlite", tmp_path / "files")
    [old] = await history.mine("c", "alice")
    assert (old.id, old.caption, old.prompt_language) == ("abcd", None, None)
    await history.set_caption("abcd", "a fox")
    assert (await history.get("abcd")).caption == "a fox"  # type: ignore[union-attr]
    assert (old.score, old.candidate_of, await history.candidates("abcd")) == (None, None, [])  # an ordinary image
    best = await add(history, "alice", "a fox, best of 2", score=30.5)  # the new columns take writes
    await add(history, "alice", "a fox, best of 2", score=12.0, candidate_of=best.id)
    assert [g.id for g in await history.mine("c", "alice")] == ["abcd", best.id]
    await history.close()


async def test_best_of_candidates_are_kept_marked_and_out_of_the_users_list(tmp_path: Path) -> None:
    history = await History.open(tmp_path / "h.sqlite", tmp_path / "files")
    chosen = await add(history, "alice", "a fox", score=31.0, seed=12)
    low = await add(history, "alice", "a fox", score=9.5, seed=10, candidate_of=chosen.id)
    high = await add(history, "alice", "a fox", score=27.25, seed=11, candidate_of=chosen.id)
    plain = await add(history, "alice", "a lighthouse")
    await history.close()

    history = await History.open(tmp_path / "h.sqlite", tmp_path / "files")  # a restart
    assert [(g.id, g.score) for g in await history.candidates(chosen.id)] == [(high.id, 27.25), (low.id, 9.5)]
    assert await history.candidates(plain.id) == [] and await history.candidates(low.id) == []
    # "last", "the first one" and the model's list mean the posted pictures, never the candidates that lost.
    assert [g.id for g in await history.mine("c", "alice")] == [chosen.id, plain.id]
    assert (await history.resolve("first", Viewer("alice", "c"))).id == chosen.id
    assert (await history.resolve(low.id, Viewer("alice", "c"))).candidate_of == chosen.id  # an id still finds one
    await history.close()
