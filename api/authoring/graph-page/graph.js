// The graph page: asks the API for a definition's or a run's Mermaid flowchart and renders it with
// the mermaid package the API serves beside this file (no CDN). The key stays in this tab only.
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  for (const name of ['definition', 'version', 'run']) $(name).value = params.get(name) ?? '';
  $('key').value = sessionStorage.getItem('workflow-api-key') ?? '';
  mermaid.initialize({ startOnLoad: false, securityLevel: 'strict', flowchart: { htmlLabels: false } });

  function show(message, isError) {
    $('status').textContent = isError ? '' : message;
    $('error').hidden = !isError;
    $('error').textContent = isError ? message : '';
  }

  async function render() {
    const run = $('run').value.trim();
    const definition = $('definition').value.trim();
    const version = $('version').value.trim();
    const key = $('key').value;
    if (!run && !(definition && version)) return show('Name a definition and its version, or a run.', false);
    if (!key) return show('Enter an API key to read the graph.', false);
    sessionStorage.setItem('workflow-api-key', key);
    const path = run
      ? `../v1/runs/${encodeURIComponent(run)}/graph`
      : `../v1/definitions/${encodeURIComponent(definition)}/versions/${encodeURIComponent(version)}/graph`;
    show('Loading…', false);
    const response = await fetch(path, { headers: { authorization: `Bearer ${key}`, accept: 'application/json' } });
    const body = await response.json().catch(() => undefined);
    if (!response.ok) {
      $('graph').replaceChildren();
      $('source-box').hidden = true;
      return show(`${response.status} ${body?.title ?? response.statusText}: ${body?.detail ?? ''}`, true);
    }
    const { svg } = await mermaid.render('workflow-graph', body.mermaid);
    $('graph').innerHTML = svg;
    $('source').textContent = body.mermaid;
    $('source-box').hidden = false;
    const steps = Object.keys(body.nodes).length;
    show(run ? `Run ${body.runId} (${body.status}) of ${body.name}@${body.version}: ${steps} steps` : `${body.name}@${body.version}: ${steps} steps`, false);
    document.body.dataset.rendered = run ? `run:${body.runId}` : `definition:${body.name}@${body.version}`;
  }

  $('ask').addEventListener('submit', (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const name of ['definition', 'version', 'run']) if ($(name).value.trim()) next.set(name, $(name).value.trim());
    history.replaceState(null, '', `?${next}`);
    render().catch((error) => show(`the graph could not be drawn: ${error.message}`, true));
  });
  render().catch((error) => show(`the graph could not be drawn: ${error.message}`, true));
})();
