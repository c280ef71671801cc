"""Gemini's File Search stores through google-genai against a real server: stores, uploads,
imports, documents, metadata filters and generateContent's fileSearch tool with grounding."""

from __future__ import annotations

import io
import time

import pytest
from google import genai
from google.genai import errors, types

from test_collections import HANDBOOK
from test_documents import text_pdf


@pytest.fixture()
def client(server: str) -> genai.Client:
    return genai.Client(api_key="unused", http_options=types.HttpOptions(base_url=server))


def _done(client: genai.Client, op: types.Operation) -> types.Operation:
    while not op.done:  # the pattern Gemini's docs show; litegate indexes before it answers
        time.sleep(1)
        op = client.operations.get(op)
    return op


def test_store_upload_import_documents_and_grounded_answer(client: genai.Client) -> None:
    store = client.file_search_stores.create(config={"display_name": "handbook store"})
    assert store.name.startswith("fileSearchStores/") and store.display_name == "handbook store"
    op = client.file_search_stores.upload_to_file_search_store(
        file_search_store_name=store.name, file=io.BytesIO(HANDBOOK.encode()),
        config={"display_name": "handbook.md", "mime_type": "text/markdown",
                "custom_metadata": [{"key": "dept", "string_value": "hr"}, {"key": "year", "numeric_value": 2026}]})
    op = _done(client, op)
    assert op.response.document_name.startswith(store.name + "/documents/")
    pdf = client.files.upload(file=io.BytesIO(text_pdf([["Forklifts may only be driven by certified staff."]])),
                              config={"mime_type": "application/pdf", "display_name": "safety.pdf"})
    imported = _done(client, client.file_search_stores.import_file(
        file_search_store_name=store.name, file_name=pdf.name,
        config={"custom_metadata": [{"key": "dept", "string_value": "ops"}]}))
    assert imported.response.document_name.startswith(store.name + "/documents/")
    again = client.operations.get(imported)  # an operation can be read back by its name
    assert again.done and again.response.document_name == imported.response.document_name

    docs = list(client.file_search_stores.documents.list(parent=store.name))
    assert sorted(d.display_name for d in docs) == ["handbook.md", "safety.pdf"]
    hr = next(d for d in docs if d.display_name == "handbook.md")
    assert {m.key: (m.string_value or m.numeric_value) for m in hr.custom_metadata} == {"dept": "hr", "year": 2026}
    assert client.file_search_stores.documents.get(name=hr.name).display_name == "handbook.md"
    assert client.file_search_stores.get(name=store.name).active_documents_count == 2
    assert store.name in {s.name for s in client.file_search_stores.list()}

    r = client.models.generate_content(
        model="lite", contents="How many days of paid leave do employees get per year?",
        config=types.GenerateContentConfig(tools=[types.Tool(file_search=types.FileSearch(
            file_search_store_names=[store.name], top_k=3))]))
    assert "25" in r.text
    grounding = r.candidates[0].grounding_metadata
    assert any("25 days" in c.retrieved_context.text for c in grounding.grounding_chunks)
    support = grounding.grounding_supports[0]
    cited = [grounding.grounding_chunks[i].retrieved_context for i in support.grounding_chunk_indices]
    assert any(c.title == "handbook.md" and "25" in c.text for c in cited)
    assert support.segment.end_index == len(r.text.encode())

    # the metadata filter: only the operations document is searched, which says nothing of leave
    r = client.models.generate_content(
        model="lite", contents="How many days of paid leave do employees get per year?",
        config=types.GenerateContentConfig(tools=[types.Tool(file_search=types.FileSearch(
            file_search_store_names=[store.name], metadata_filter='dept = "ops"'))]))
    assert {c.retrieved_context.title for c in r.candidates[0].grounding_metadata.grounding_chunks} <= {"safety.pdf"}

    with pytest.raises(errors.ClientError) as refused:  # documents in it: force is needed
        client.file_search_stores.delete(name=store.name)
    assert refused.value.code == 400
    client.file_search_stores.documents.delete(name=hr.name)
    assert len(list(client.file_search_stores.documents.list(parent=store.name))) == 1
    client.file_search_stores.delete(name=store.name, config={"force": True})
    with pytest.raises(errors.ClientError) as gone:
        client.file_search_stores.get(name=store.name)
    assert gone.value.code == 404


def test_bad_file_search_input_is_a_clear_4xx(client: genai.Client) -> None:
    def ask(tool: types.FileSearch) -> None:
        client.models.generate_content(model="lite", contents="anything?",
                                       config=types.GenerateContentConfig(tools=[types.Tool(file_search=tool)]))
    with pytest.raises(errors.ClientError) as unknown:
        ask(types.FileSearch(file_search_store_names=["fileSearchStores/vs_nope"]))
    assert unknown.value.code == 404
    store = client.file_search_stores.create(config={"display_name": "empty"})
    with pytest.raises(errors.ClientError) as empty:
        ask(types.FileSearch(file_search_store_names=[store.name]))
    assert empty.value.code == 400 and "empty" in empty.value.message
    with pytest.raises(errors.ClientError) as bad_filter:
        ask(types.FileSearch(file_search_store_names=[store.name], metadata_filter="dept = = ops"))
    assert bad_filter.value.code == 400 and "metadataFilter" in bad_filter.value.message
    with pytest.raises(errors.ClientError) as no_file:
        client.file_search_stores.import_file(file_search_store_name=store.name, file_name="files/nope")
    assert no_file.value.code == 404
    client.file_search_stores.delete(name=store.name)
