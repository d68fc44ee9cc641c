"""Through ansible-playbook itself: the FQCNs resolve, --check --diff prints a readable diff, and a
secret passed to nomad_variable appears nowhere in -vvv output."""
import subprocess
import sys

SECRET = "pl4ybook-s3cret-that-must-not-leak"


def playbook(nomad, tmp_path, text, *args):
    path = tmp_path / "play.yml"
    path.write_text(text)
    return subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", "-e",
                           f"ansible_python_interpreter={sys.executable}", str(path), *args],
                          capture_output=True, text=True, env=nomad.env(), timeout=300, check=False)


def test_check_diff_then_apply_through_ansible_playbook(nomad, tmp_path, make_job):
    (tmp_path / "job.hcl").write_text(make_job("played", count=1))
    (tmp_path / "job3.hcl").write_text(make_job("played", count=3))
    play = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: deploy
      cloudvirt.platform.nomad_job:
        content: "{{ lookup('ansible.builtin.file', job_file) }}"
      register: deployed
    - name: show
      ansible.builtin.debug:
        msg: "version={{ deployed.job_version | default('none') }}"
"""
    applied = playbook(nomad, tmp_path, play, "-e", f"job_file={tmp_path / 'job.hcl'}")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "changed=1" in applied.stdout

    checked = playbook(nomad, tmp_path, play, "--check", "--diff", "-e", f"job_file={tmp_path / 'job3.hcl'}")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "-    Count = 1" in checked.stdout and "+    Count = 3" in checked.stdout, checked.stdout
    assert nomad.job("played")["TaskGroups"][0]["Count"] == 1

    again = playbook(nomad, tmp_path, play, "-e", f"job_file={tmp_path / 'job.hcl'}")
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout


def test_variable_values_never_reach_the_output(nomad, tmp_path):
    play = f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - name: write
      cloudvirt.platform.nomad_variable:
        path: nomad/jobs/leaktest
        items:
          password: "{SECRET}"
    - name: change
      cloudvirt.platform.nomad_variable:
        path: nomad/jobs/leaktest
        items:
          password: "{SECRET}-2"
    - name: read back
      cloudvirt.platform.nomad_variable:
        path: nomad/jobs/leaktest
        state: read
      register: read
    - name: keys only
      ansible.builtin.assert:
        that:
          - read.item_keys == ['password']
          - read.data is not defined
"""
    result = playbook(nomad, tmp_path, play, "-vvv", "--diff")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "password = ********" in output, "the diff shows the key"
    assert SECRET not in output
    assert nomad.api("GET", "/v1/var/nomad/jobs/leaktest")["Items"]["password"] == f"{SECRET}-2"
