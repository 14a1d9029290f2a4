/** The console: one page per address under /ui (the API answers every /ui/... with this app). */
import { render } from 'preact';
import { Link, Redirect, Route, Router, Switch } from 'wouter-preact';
import { JobPage } from './pages/job-page.tsx';
import { JobsPage } from './pages/jobs-page.tsx';
import { ModelPage } from './pages/model-page.tsx';
import { ModelsPage } from './pages/models-page.tsx';
import { VersionPage } from './pages/version-page.tsx';
import { WorkersPage } from './pages/workers-page.tsx';
import './styles.css';

/**
 * Whether the API has auth on: it says so in the page it serves (`<meta name="mlq-auth">`). With auth
 * off there is no session, so nothing to sign out of. A page without the tag (Vite's dev server) is
 * taken as auth on.
 */
const authOn = document.querySelector<HTMLMetaElement>('meta[name="mlq-auth"]')?.content !== 'off';

function Nav() {
  return (
    <header>
      <span class="brand">mlq</span>
      <nav>
        <Link href="/jobs">Jobs</Link>
        <Link href="/models">Models</Link>
        <Link href="/workers">Workers</Link>
        <a href="/docs">API docs</a>
        <a href="/admin/queues">Queues</a>
      </nav>
      {authOn && (
        <form method="post" action="/logout" class="logout" data-testid="sign-out">
          <button type="submit" class="secondary small">
            Sign out
          </button>
        </form>
      )}
    </header>
  );
}

function App() {
  return (
    <Router base="/ui">
      <Nav />
      <main>
        <Switch>
          <Route path="/jobs" component={JobsPage} />
          <Route path="/jobs/:id">{(p: { id: string }) => <JobPage id={p.id} />}</Route>
          <Route path="/models" component={ModelsPage} />
          <Route path="/models/:name">{(p: { name: string }) => <ModelPage name={p.name} />}</Route>
          <Route path="/models/:name/versions/:v">
            {(p: { name: string; v: string }) => <VersionPage name={p.name} v={Number(p.v)} />}
          </Route>
          <Route path="/workers" component={WorkersPage} />
          <Route path="/">
            <Redirect to="/jobs" />
          </Route>
          <Route>
            <p class="error">No page here.</p>
          </Route>
        </Switch>
      </main>
    </Router>
  );
}

render(<App />, document.getElementById('app')!);
