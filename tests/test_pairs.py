import pytest

from lidr.errors import JoinError
from lidr.pairs import build_pairs, translation_jobs


def resp(id_, lang, text, kind="general", finish="stop"):
    return {
        "id": id_,
        "kind": kind,
        "lang": lang,
        "messages": [{"role": "user", "content": f"{id_} in {lang}"}],
        "response": text,
        "finish_reason": finish,
    }


def tr(id_, src, tgt, text, ok=True, finish="stop"):
    return {
        "id": id_,
        "source_lang": src,
        "target_lang": tgt,
        "text": text if ok else None,
        "ok": ok,
        "finish_reason": finish,
    }


PROMPTS = [{"id": "a", "text": "Name a fruit."}, {"id": "t", "text": "Translate 'cat' into Spanish."}]


def test_pairs_follow_the_method_table():
    responses = [resp("a", "en", "An apple."), resp("a", "es", "Una fruta es manzana.", finish="length")]
    translations = [tr("a", "en", "es", "Una manzana."), tr("a", "es", "en", "A fruit is apple.")]
    x_pair, en_pair = build_pairs(PROMPTS, responses, translations, "en", ("es",))
    assert x_pair == {
        "id": "a",
        "source_lang": "es",
        "kind": "general",
        "asks_translation": False,
        "lang": "es",
        "pair_type": "x",
        "prompt": [{"role": "user", "content": "a in es"}],
        "chosen": [{"role": "assistant", "content": "Una manzana."}],
        "rejected": [{"role": "assistant", "content": "Una fruta es manzana."}],
        "chosen_origin": "en response translated to es",
        "rejected_origin": "es response",
        "chosen_finish_reason": "stop",
        "rejected_finish_reason": "length",
        "translation_ok": True,
        "chosen_source": "An apple.",
        "chosen_source_finish_reason": "stop",
        "rejected_source": None,
        "rejected_source_finish_reason": None,
    }
    assert en_pair["lang"] == "en" and en_pair["source_lang"] == "es" and en_pair["pair_type"] == "en"
    assert en_pair["prompt"] == [{"role": "user", "content": "a in en"}]
    assert en_pair["chosen"][0]["content"] == "An apple."
    assert en_pair["rejected"][0]["content"] == "A fruit is apple."
    assert (en_pair["chosen_source"], en_pair["rejected_source"]) == (None, "Una fruta es manzana.")
    assert en_pair["rejected_source_finish_reason"] == "length"


def test_english_pairs_are_kept_for_every_language():
    responses = [resp("a", "en", "E"), resp("a", "es", "S"), resp("a", "de", "D")]
    translations = [
        tr("a", "en", "es", "E-es"),
        tr("a", "en", "de", "E-de"),
        tr("a", "es", "en", "S-en"),
        tr("a", "de", "en", "D-en"),
    ]
    pairs = build_pairs(PROMPTS, responses, translations, "en", ("es", "de"))
    en_pairs = [p for p in pairs if p["lang"] == "en"]
    assert [(p["source_lang"], p["rejected"][0]["content"]) for p in en_pairs] == [("es", "S-en"), ("de", "D-en")]


def test_prompts_asking_for_a_translation_keep_the_english_response_untranslated():
    responses = [resp("t", "en", "gato"), resp("t", "es", "cat")]
    translations = [tr("t", "en", "es", "gato (es)"), tr("t", "es", "en", "cat (en)")]
    x_pair, en_pair = build_pairs(PROMPTS, responses, translations, "en", ("es",))
    assert x_pair["pair_type"] == "x_untranslated" and x_pair["asks_translation"]
    assert x_pair["chosen"][0]["content"] == "gato"
    assert x_pair["chosen_source"] is None and x_pair["rejected_source"] is None
    assert en_pair["pair_type"] == "en"


def test_failed_translation_is_a_field_not_text():
    responses = [resp("a", "en", "E"), resp("a", "es", "S")]
    translations = [tr("a", "en", "es", None, ok=False, finish="length"), tr("a", "es", "en", "S-en")]
    x_pair, en_pair = build_pairs(PROMPTS, responses, translations, "en", ("es",))
    assert x_pair["translation_ok"] is False and x_pair["chosen"][0]["content"] is None
    assert en_pair["translation_ok"] is True


def test_a_missing_record_raises_naming_the_id():
    with pytest.raises(JoinError, match=r"en response .* missing for id\(s\) a"):
        build_pairs(PROMPTS, [resp("a", "es", "S")], [], "en", ("es",))
    with pytest.raises(JoinError, match=r"en->es translation .* missing for id\(s\) a"):
        build_pairs(PROMPTS, [resp("a", "en", "E"), resp("a", "es", "S")], [tr("a", "es", "en", "x")], "en", ("es",))


def test_translation_jobs():
    jobs = translation_jobs([resp("a", "en", "E"), resp("a", "es", "S")], "en", ("es", "de"))
    assert jobs == [
        {"id": "a", "source_lang": "en", "target_lang": "es", "source_text": "E"},
        {"id": "a", "source_lang": "en", "target_lang": "de", "source_text": "E"},
        {"id": "a", "source_lang": "es", "target_lang": "en", "source_text": "S"},
    ]


def test_without_dominant_pairs_only_the_x_pairs_are_built_and_no_x_answer_is_translated():
    responses = [resp("a", "en", "An apple."), resp("a", "es", "Una fruta."), resp("a", "de", "Ein Apfel.")]
    jobs = translation_jobs(responses, "en", ("es", "de"), dominant_pairs=False)
    assert [(j["source_lang"], j["target_lang"]) for j in jobs] == [("en", "es"), ("en", "de")]
    translations = [tr("a", "en", "es", "Una manzana."), tr("a", "en", "de", "Ein Apfel.")]  # no x -> en
    pairs = build_pairs(PROMPTS, responses, translations, "en", ("es", "de"), dominant_pairs=False)
    assert [(p["pair_type"], p["lang"]) for p in pairs] == [("x", "es"), ("x", "de")]
    full = build_pairs(
        PROMPTS,
        responses,
        [*translations, tr("a", "es", "en", "A fruit."), tr("a", "de", "en", "An apple.")],
        "en",
        ("es", "de"),
    )
    assert [p for p in full if p["pair_type"] == "x"] == pairs  # the x pairs are the same either way
    with pytest.raises(JoinError, match="es->en translation"):
        build_pairs(PROMPTS, responses, translations, "en", ("es", "de"))


def test_every_pair_is_made_by_the_record_constructor_and_checked(monkeypatch):
    import lidr.pairs
    from lidr.errors import DataError
    from lidr.records import PAIR, make_pair

    made = []

    def counting(**fields):
        made.append(make_pair(**fields))
        return made[-1]

    monkeypatch.setattr(lidr.pairs, "make_pair", counting)
    responses = [resp("a", "en", "E"), resp("a", "es", "S"), resp("t", "en", "gato"), resp("t", "es", "cat")]
    translations = [tr(i, s, t, f"{i}:{s}->{t}") for i in ("a", "t") for s, t in (("en", "es"), ("es", "en"))]
    pairs = build_pairs(PROMPTS, responses, translations, "en", ("es",))
    assert [p["pair_type"] for p in pairs] == ["x", "en", "x_untranslated", "en"]
    assert all(p is m for p, m in zip(pairs, made, strict=True))
    for p in pairs:
        assert PAIR.check(p, "pair") is p
    with pytest.raises(DataError, match="field 'pair_type' is str 'y'"):
        make_pair(
            **{**{k: v for k, v in pairs[0].items() if k not in ("chosen", "rejected")}, "pair_type": "y"},
            chosen="c",
            rejected="r",
        )
