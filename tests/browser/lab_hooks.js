// What the browser tests ask JupyterLab's page; the app is exposed by --LabApp.expose_app_in_browser.
// The notebook is the current widget of the shell; every DOM query stays inside the explorer's cell.
window.labTest = {
  CONTROLS: ['.widget-slider', '.widget-dropdown', '.widget-toggle-buttons', '.widget-checkbox', '.widget-text',
             '.widget-textarea', '.widget-toggle-button', '.widget-button'].join(', '),

  panel() {
    return window.jupyterapp.shell.currentWidget;
  },

  kernel() {
    return this.panel().sessionContext.session.kernel;
  },

  // True once the notebook is open and its kernel connected.
  opened() {
    const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    return Boolean(panel && panel.content && panel.sessionContext && panel.sessionContext.session &&
                   panel.sessionContext.session.kernel);
  },

  // Count the kernel's busy and idle states and keep every error it reports (a widget callback's
  // exception goes to no cell, only to this channel).
  listen() {
    this.busy = 0;
    this.idle = 0;
    this.errors = [];
    const kernel = this.kernel();
    kernel.statusChanged.connect((_, status) => {
      if (status === 'busy') this.busy += 1;
      if (status === 'idle') this.idle += 1;
    });
    kernel.iopubMessage.connect((_, msg) => {
      if (msg.header.msg_type === 'error') {
        this.errors.push(`${msg.content.ename}: ${msg.content.evalue} (while handling a ` +
                         `${msg.parent_header.msg_type || 'kernel'} message)`);
      }
    });
  },

  status() {
    return this.kernel().status;
  },

  // Clear every output, then Run All; `runResult` is set when the run is over.
  startRunAll() {
    const commands = window.jupyterapp.commands;
    this.runResult = undefined;
    return commands.execute('notebook:clear-all-cell-outputs').then(() => {
      commands.execute('notebook:run-all-cells').then(
        ok => { this.runResult = {ok: Boolean(ok)}; },
        error => { this.runResult = {ok: false, error: String(error)}; });
    });
  },

  // One line per code cell that did not run, holds an error output, or printed a traceback.
  cellProblems() {
    const problems = [];
    this.panel().content.widgets.forEach((cell, index) => {
      if (cell.model.type !== 'code') return;
      const where = `cell ${index} (${cell.model.sharedModel.getSource().split('\n')[0].slice(0, 60)})`;
      if (cell.model.executionCount === null) problems.push(`${where}: did not run`);
      for (let k = 0; k < cell.model.outputs.length; k++) {
        const output = cell.model.outputs.get(k).toJSON();
        if (output.output_type === 'error') {
          problems.push(`${where}: ${output.ename}: ${output.evalue}`);
        } else if (output.output_type === 'stream' && output.name === 'stderr' &&
                   String(output.text).includes('Traceback')) {
          problems.push(`${where}: traceback on stderr: ${String(output.text).slice(0, 300)}`);
        }
      }
    });
    return problems;
  },

  // The last code cell that calls a `*_explorer(...)` function: marks its node and its first widget.
  markExplorer() {
    const cells = this.panel().content.widgets;
    let found = null;
    cells.forEach((cell, index) => {
      if (cell.model.type === 'code' && /\b\w+_explorer\(/.test(cell.model.sharedModel.getSource())) {
        found = {index, cell};
      }
    });
    if (found === null) return null;
    found.cell.node.setAttribute('data-test-explorer-cell', '');
    const widget = found.cell.node.querySelector('.jp-OutputArea-output .jupyter-widgets');
    if (widget) widget.setAttribute('data-test-explorer', '');
    return {index: found.index, source: found.cell.model.sharedModel.getSource(), widget: Boolean(widget)};
  },

  explorer() {
    return document.querySelector('[data-test-explorer]');
  },

  // The explorer's controls in page order, each marked data-test-control=<i>.
  controls() {
    const root = this.explorer();
    const found = [...root.querySelectorAll(this.CONTROLS)].filter(
      node => !(node.parentElement && node.parentElement.closest('.widget-toggle-buttons')));
    return found.map((node, i) => {
      node.setAttribute('data-test-control', String(i));
      const has = name => node.classList.contains(name);
      const input = node.querySelector('input');
      const kind = has('widget-slider') ? 'slider' : has('widget-dropdown') ? 'dropdown'
        : has('widget-toggle-buttons') ? 'toggle-buttons' : has('widget-checkbox') ? 'checkbox'
        : has('widget-text') ? (input && input.type === 'number' ? 'number' : 'text')
        : has('widget-textarea') ? 'text' : has('widget-toggle-button') ? 'toggle' : 'button';
      const label = node.querySelector('.widget-label');
      const name = (label && label.textContent.trim()) || node.textContent.trim() || `${kind} ${i}`;
      return {index: i, kind, name};
    });
  },

  // The pictures shown in the explorer's outputs: data URL, natural and rendered size (CSS pixels).
  images() {
    const root = this.explorer();
    return [...root.querySelectorAll('.widget-output img')].map(img => {
      const box = img.getBoundingClientRect();
      return {src: img.src, naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
              width: box.width, height: box.height};
    });
  },

  // The last line of each error or traceback shown inside the explorer's own output areas.
  explorerErrors() {
    const root = this.explorer();
    return [...root.querySelectorAll('.widget-output [data-mime-type="application/vnd.jupyter.stderr"]')]
      .map(node => node.textContent.trim())
      .filter(text => /Traceback|\w+Error\b/.test(text))
      .map(text => text.split('\n').pop().slice(0, 300));
  },
};
