"""``mekit app``: a web app over the same library functions as the command line.

A researcher who would rather click than type chooses a dataset, checks it, previews and
preprocesses it (the Data screen), and, as the other screens land, builds datasets from videos,
trains and evaluates, and analyses recordings. The app holds no logic of its own: every route
checks its input and calls one library function, in a background job when the work is long.

Modules, bottom to top:

- :mod:`mekit.app.settings`: host, port, allowed folders, work folder, password, limits.
- :mod:`mekit.app.sandbox`: every user path must resolve inside the allowed folders; uploads.
- :mod:`mekit.app.jobs`: background jobs, one spawned process each, with progress and cancel.
- :mod:`mekit.app.data_jobs`: the Data screen's jobs (check + EDA, preview, preprocess).
- :mod:`mekit.app.routes_data`: the Data screen's API (``/api/data/...``).
- :mod:`mekit.app.server`: :func:`~mekit.app.server.create_app`, the shared routes, auth and
  errors; its docstring says how to add a screen, a route and a job.
- ``static/``: the page (``index.html``, ``app.css``, ``app.js``) and one script per screen
  (``screens/data.js``).

Nothing in mekit imports this package, and this file imports nothing: a job process imports
:mod:`mekit.app.jobs` without FastAPI.
"""
