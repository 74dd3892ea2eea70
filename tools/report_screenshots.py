"""PNG screenshots of a folder run's report (the README's pictures), in headless Chromium.

python tools/report_screenshots.py demo_output/annotated docs
"""

import argparse

from pipelines.report_browser import launch_chromium, screenshot_report

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("run_dir", help="a folder run's output folder (with index.html)")
    p.add_argument("out_dir", help="where report_run.png and report_video.png go")
    a = p.parse_args()
    with launch_chromium() as browser:
        for path in screenshot_report(browser, a.run_dir, a.out_dir):
            print(path)
