//! The GitHub Actions workflow a homelab repository runs on pull requests: install homelabctl, run
//! `homelabctl check` (which includes the secret scan of the whole history, hence the full clone).

/// `.github/workflows/check.yml`, pinned to this homelabctl's version and repository.
pub fn github_workflow() -> &'static str {
    concat!(
        "# Written by homelabctl: runs the repository checks on every pull request.\n",
        "name: check\n",
        "\n",
        "on:\n",
        "  pull_request:\n",
        "  push:\n",
        "    branches: [main]\n",
        "\n",
        "permissions:\n",
        "  contents: read\n",
        "\n",
        "concurrency:\n",
        "  group: check-${{ github.ref }}\n",
        "  cancel-in-progress: true\n",
        "\n",
        "jobs:\n",
        "  check:\n",
        "    runs-on: ubuntu-latest\n",
        "    timeout-minutes: 30\n",
        "    env:\n",
        "      HOMELABCTL_VERSION: \"",
        env!("CARGO_PKG_VERSION"),
        "\"\n",
        "    steps:\n",
        "      - uses: actions/checkout@v4\n",
        "        with:\n",
        "          fetch-depth: 0 # the secret scan reads every commit\n",
        "          persist-credentials: false\n",
        "      - uses: actions/cache@v4\n",
        "        with:\n",
        "          path: ~/.cargo/bin/homelabctl\n",
        "          key: homelabctl-${{ runner.os }}-${{ env.HOMELABCTL_VERSION }}\n",
        "      - name: Install homelabctl\n",
        "        run: |\n",
        "          command -v homelabctl >/dev/null || cargo install --locked \\\n",
        "            --git ",
        env!("CARGO_PKG_REPOSITORY"),
        " --tag \"v${HOMELABCTL_VERSION}\" homelabctl\n",
        "      - name: homelabctl check\n",
        "        run: homelabctl check\n",
        "      - name: Secret scan of the whole history\n",
        "        run: homelabctl scan --history\n",
    )
}

#[cfg(test)]
mod tests {
    use super::github_workflow;

    #[test]
    fn runs_check_on_pull_requests_with_full_history() {
        let w = github_workflow();
        assert!(w.contains("pull_request:"));
        assert!(w.contains("homelabctl check"));
        assert!(w.contains("fetch-depth: 0"));
        assert!(w.contains(env!("CARGO_PKG_VERSION")));
        assert!(!w.contains('\t'), "YAML forbids tabs in indentation");
    }
}
