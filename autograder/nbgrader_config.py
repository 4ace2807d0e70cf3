"""nbgrader configuration for the Descent course.

The course root is the repository: nbgrader's source notebooks are generated from
solutions/ into _build/course/source, the student release is exercises/, and
submissions, autograded copies, feedback and the gradebook live under
autograder/course/. Run nbgrader's own commands from this folder, e.g.
`cd autograder && nbgrader autograde 01_sgd`.
"""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COURSE = os.path.join("autograder", "course")

c = get_config()  # noqa: F821 - provided by traitlets when nbgrader loads this file

c.CourseDirectory.root = ROOT
c.CourseDirectory.course_id = "descent"  # PostgreSQL enforces the gradebook's course foreign key
c.CourseDirectory.source_directory = os.path.join("_build", "course", "source")
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.submitted_directory = os.path.join(COURSE, "submitted")
c.CourseDirectory.autograded_directory = os.path.join(COURSE, "autograded")
c.CourseDirectory.feedback_directory = os.path.join(COURSE, "feedback")
c.CourseDirectory.db_url = os.environ.get(
    "DESCENT_DB_URL", "sqlite:///" + os.path.join(ROOT, COURSE, "gradebook.db"))
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*"]

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Students may delete or edit test cells: restore them from the gradebook.
c.OverwriteCells.add_missing_cells = True
# ... back where they were (nbgrader's own restore fails when a locked cell precedes a test).
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "autograder.grading.RestoreCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.Execute.timeout = 60
c.Execute.raise_on_iopub_timeout = False  # a loop swallowing interrupts must not sink the notebook

# Feedback never shows hidden tests, says which grades await a human, shows each error once, and
# renders its math when written (no MathJax from a CDN): autograder/feedback.py.
c.GenerateFeedback.preprocessors = [
    "autograder.feedback.FeedbackGrades",
    "nbgrader.preprocessors.ClearHiddenTests",
    "autograder.feedback.TidyOutputs",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
# nbgrader asks for the template "feedback" by name: ours is found first; its formgrader's own
# templates ("formgrade") stay where nbgrader keeps them.
import nbgrader  # noqa: E402

c.HTMLExporter.extra_template_basedirs = [
    os.path.join(ROOT, "autograder", "templates"),
    os.path.join(os.path.dirname(nbgrader.__file__), "server_extensions", "formgrader", "templates")]
c.HTMLExporter.filters = {"markdown2mathml": "autograder.feedback.markdown2html"}

# Student code runs in an operating-system sandbox; every score is decided in the
# grader's process (see autograder/grading.py). nbgrader's own kernel-based Execute
# is what the student's "Validate" button uses; the stock list is STOCK_AUTOGRADE.
STOCK_AUTOGRADE = [
    "nbgrader.preprocessors.Execute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
# The course's secret seed: the grading pipeline makes it, nbgrader's own commands read it.
c.SandboxExecute.seed_file = os.path.join(ROOT, COURSE, "seed")
c.Autograde.autograde_preprocessors = ["autograder.grading.SandboxExecute"] + STOCK_AUTOGRADE[1:]
